// Ready-to-paste client configurations for a new key, filled in with this server's address.

export interface Snippet {
  id: string
  title: string
  where: string
  language: string
  text: string
}

export function snippets(origin: string, key: string, model = 'gpt-5.4'): Snippet[] {
  const v1 = `${origin}/v1`
  return [
    {
      id: 'codex',
      title: 'Codex CLI',
      where: '~/.codex/config.toml, then export CODEX_LB_API_KEY',
      language: 'toml',
      text: `# export CODEX_LB_API_KEY=${key}
model = "gpt-5.3-codex"
model_provider = "codex-lb"

[model_providers.codex-lb]
name = "OpenAI"
base_url = "${origin}/backend-api/codex"
wire_api = "responses"
supports_websockets = true
env_key = "CODEX_LB_API_KEY"
`,
    },
    {
      id: 'opencode',
      title: 'OpenCode',
      where: '~/.config/opencode/opencode.json, then export CODEX_LB_API_KEY',
      language: 'json',
      text: `{
  "$schema": "https://opencode.ai/config.json",
  "provider": {
    "openai": {
      "options": {
        "baseURL": "${v1}",
        "apiKey": "{env:CODEX_LB_API_KEY}"
      }
    }
  },
  "model": "openai/${model}"
}
`,
    },
    {
      id: 'sdk',
      title: 'OpenAI SDK',
      where: 'Python',
      language: 'python',
      text: `from openai import OpenAI

client = OpenAI(base_url="${v1}", api_key="${key}")
print(client.responses.create(model="${model}", input="Say hi").output_text)
`,
    },
    {
      id: 'curl',
      title: 'curl',
      where: 'any shell',
      language: 'sh',
      text: `curl ${v1}/responses \\
  -H 'authorization: Bearer ${key}' \\
  -H 'content-type: application/json' \\
  -d '{"model": "${model}", "input": "Say hi"}'
`,
    },
  ]
}
