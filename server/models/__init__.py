"""The model catalog: which models exist, which plans serve them, and how clients see them."""
