PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations VALUES(1,'threads','2026-12-01 16:06:00',1,X'627ef19164c9bb298a0cd99945981c9b7bda3d9e6cf12eb35145e3b1d3bf7cf8740f0dbaa0b475185fc2993397078049',459520);
INSERT INTO _sqlx_migrations VALUES(2,'logs','2026-12-01 16:06:00',1,X'521b72cbc04c7d03b1e4aef8dc0fdee672f1f7f5881385a55a0e937e4ebe87a3f67bca4d3f6b59afbc9a7ca723c82856',247281);
INSERT INTO _sqlx_migrations VALUES(3,'logs thread id','2026-12-01 16:06:00',1,X'e58a2862bdb66d3274e60144a26dc9d68bbefff834cd29b82b740f38fcf95862934f412665d985715167839e8f0eb377',311447);
INSERT INTO _sqlx_migrations VALUES(4,'thread dynamic tools','2026-12-01 16:06:00',1,X'8adc251366e4c7e5ea78b620ac71f4c4bdfb8f048bf9f2fd7204226cfba54c8e83fc9d83fc1ec334bc683bb7f6d0d8a8',267011);
INSERT INTO _sqlx_migrations VALUES(5,'threads cli version','2026-12-01 16:06:00',1,X'1ac64f85e083e5b49b974bf498fc39c630f0032057fb4bf4cb31708619fac5a80189f261cf3e38dafd92dc406e73c220',259389);
INSERT INTO _sqlx_migrations VALUES(6,'memories','2026-12-01 16:06:00',1,X'a203fc4b597e1420bffdc4e00e214798b21cf7fc921d8bd6f089c75248fb6a4b4942c97a1f8e0271eca8cf3b3e5e7a80',242674);
INSERT INTO _sqlx_migrations VALUES(7,'threads first user message','2026-12-01 16:06:00',1,X'7e35a464df6d4c82694de50865ba3fe9104f9e1385a33be7d633ab4b8d6cf60b7f369fe083d31251fd77b75fa2d61f82',288563);
INSERT INTO _sqlx_migrations VALUES(8,'backfill state','2026-12-01 16:06:00',1,X'aa3f287f7a448554e7af01f259f0871ce90ace1a7d4b8ebbd74c87ae57c3e21119f7eec8b9c2e9f4a9e76e63a0f0b60a',211017);
INSERT INTO _sqlx_migrations VALUES(9,'stage1 outputs rollout slug','2026-12-01 16:06:00',1,X'8b469360777e6dd6c21d3f0eb93481251846b0a50e0a44eb0dbee4a0a32b7206768a5d83a5fcec30c6fd2e43d755ff1b',234562);
INSERT INTO _sqlx_migrations VALUES(10,'logs process id','2026-12-01 16:06:00',1,X'8adaf1365f8e5deeba68bdeee9fd83b094a87bdab364d95ab5c714f7b8bd95dc3b38576871470312154c9d41e8f10f93',308413);
INSERT INTO _sqlx_migrations VALUES(11,'logs partition prune indexes','2026-12-01 16:06:00',1,X'31ececbd07f04452d0dc5127d824ed183056b9900a31aa739387a4aef232016d975110829814841fb6bf3fd23634b799',197877);
INSERT INTO _sqlx_migrations VALUES(12,'logs estimated bytes','2026-12-01 16:06:00',1,X'0012a213ed25f2cf806c2530c487ebb00b4f102f5960d1a852154a0f77d25c9e9f7df29550faeb30ebaff15a26c7d604',281182);
INSERT INTO _sqlx_migrations VALUES(13,'threads agent nickname','2026-12-01 16:06:00',1,X'05526a0900a8430523a9a05932ea61302fce20782b245498565c1b9a2dfd10cf5c49932089b496ae23af44f6c5f76af4',584718);
INSERT INTO _sqlx_migrations VALUES(14,'agent jobs','2026-12-01 16:06:00',1,X'4d2fbb2442c5c5c7c47b4254b5b8dc2c52129f65c4a952a79f1ec5c40fb07483326429ce5acdbd372bc9262352cb6277',353110);
INSERT INTO _sqlx_migrations VALUES(15,'agent jobs max runtime seconds','2026-12-01 16:06:00',1,X'0eece6db59c948faa6608526af440a9f53f5a982d27f3e866cd9f1401c2e59bc61f8381b5a1c9744acb232f50db493e5',263506);
INSERT INTO _sqlx_migrations VALUES(16,'memory usage','2026-12-01 16:06:00',1,X'4768f743e981293735c6e07b0282ec8ace98af720059d68555b17979d28c94b0c893a97a950d5e32758bc6d92d8fe6ff',477246);
INSERT INTO _sqlx_migrations VALUES(17,'phase2 selection flag','2026-12-01 16:06:00',1,X'4cbdb2edfebf6040858ffc193cffa36e6b3fbf508f8418ad073081bbfcf59d53d423b6eb4c0ded206ab4d4c1a0efed94',264737);
INSERT INTO _sqlx_migrations VALUES(18,'phase2 selection snapshot','2026-12-01 16:06:00',1,X'a4363003bc44f0a4ae1eed53b536b7175f97863ea6881a059dc6642e70e2921576204697cec2345f560e65ff7fbf4455',429014);
INSERT INTO _sqlx_migrations VALUES(19,'thread dynamic tools defer loading','2026-12-01 16:06:00',1,X'3884c02f080f0184e92b620f870dfbb840a8ec5dfce2fe6455dd8197fcd27d7dd86e63ad6ec7c4091a1161d9ed199f8d',356515);
INSERT INTO _sqlx_migrations VALUES(20,'threads model reasoning effort','2026-12-01 16:06:00',1,X'07673f4859f740134569ab9606760d8173ed6df92da47c86fbd0ceeb333e18ab7ac91d525ab8c11503c42164fd4167ae',436565);
INSERT INTO _sqlx_migrations VALUES(21,'thread spawn edges','2026-12-01 16:06:00',1,X'ea1aebe4f5a1d56c8effcc15f705c272275dd8adfeb01bc97d3f7b283474a3b8c2b0c8c69de55786e8bda17cae6f4de7',207552);
INSERT INTO _sqlx_migrations VALUES(22,'threads agent path','2026-12-01 16:06:00',1,X'160fe01b757dd06f9573b9030952d021f2b148732bea5fc5f5ae09e9227f3f83ca676695edaf8502669fcb546119dc94',255694);
INSERT INTO _sqlx_migrations VALUES(23,'drop logs','2026-12-01 16:06:00',1,X'e6c748a9a18286e4c773ffe0dad659f16fb7e5b7b032235815991c405f2d32c068f3edde920d0fcf589b687bffcfee2e',881373);
INSERT INTO _sqlx_migrations VALUES(24,'remote control enrollments','2026-12-01 16:06:00',1,X'e92aa526b1f36e26f6221c04a671f07b27de2e7a5112d93a8c3af816a87846e7804d5fbad689e61cf4ec91fd79d3bd8a',153741);
INSERT INTO _sqlx_migrations VALUES(25,'thread timestamps millis','2026-12-01 16:06:00',1,X'd6fb51d79941b93c3278fe2a8a0c6fa882407b7b716e32d72329f0b7b60c181a42f49e56cd552315efb0402a111ede12',1161755);
INSERT INTO _sqlx_migrations VALUES(26,'thread dynamic tools namespace','2026-12-01 16:06:00',1,X'6c62a325d3b9ca8e424eacb9e3890d8d9de57c3725e2d1fa30c3743ae779fca2969387174359dfb26e4920791ae7e831',329234);
INSERT INTO _sqlx_migrations VALUES(27,'threads cwd sort indexes','2026-12-01 16:06:00',1,X'd84dca6a039e004c0c7d06c5a16c2ccc363137537f3dd9898f50bb013ce9067140761b87d58ca742d769d35976863fc3',155363);
INSERT INTO _sqlx_migrations VALUES(28,'device key bindings','2026-12-01 16:06:00',1,X'ef44adaa291e40dfe6b74e3cd259711adae13f01c5594b177d08e2d2041a67ed3813feecf049662aaed0f636bd3f4ac3',121953);
INSERT INTO _sqlx_migrations VALUES(29,'thread goals','2026-12-01 16:06:00',1,X'e9ec76f97dbf41ce4949de324a2a26538c2025c0ac4f272b77a852970fb14b7ec970d6978a765f91ae171dce9c0e4149',146750);
INSERT INTO _sqlx_migrations VALUES(30,'threads thread source','2026-12-01 16:06:00',1,X'80c1cdacd4520b42b18b960164912685591a7ee041645f35609a2ee2792eb474b7b0b758366556982d8cde2acb583672',281533);
INSERT INTO _sqlx_migrations VALUES(31,'drop device key bindings','2026-12-01 16:06:00',1,X'943675a9b3dc92d0b2731ae7d2fe324ff1a40b6366b9d5d8b4cb47ca885c08beb6ebb1d776a5a47c878b4094dde70ea0',209564);
INSERT INTO _sqlx_migrations VALUES(32,'threads preview','2026-12-01 16:06:00',1,X'3c01d615c5e3aba0fd858b7168e73881598d7d33a0ecc41527bdf6595a199d1aec2ff9f3b3000a57241c500d81b34259',353741);
INSERT INTO _sqlx_migrations VALUES(33,'thread goal stopped statuses','2026-12-01 16:06:00',1,X'4904aae354e3d8ce32ac21d2ae579fd708446ae1dfb2649fc9dd22dc9279b91a2bbb02e6f01b3e0abd1088177bf2f030',1481284);
INSERT INTO _sqlx_migrations VALUES(34,'drop thread goals','2026-12-01 16:06:00',1,X'd6fea739c76ebdef35a23f06e54efb5904d7987fb6b663db1ebc98eb9b192305f454932bfbaa2231aedca6209903a5f3',253140);
INSERT INTO _sqlx_migrations VALUES(35,'drop memory tables','2026-12-01 16:06:00',1,X'd7b56acb07c96858bdc7ca4c53db51eb71c6a19ef2c524ff68c2660a6fe0d23211a6d39cb905f01c42ffb7c8ee913bbc',541263);
INSERT INTO _sqlx_migrations VALUES(36,'threads visible sort indexes','2026-12-01 16:06:00',1,X'6381f7bb4c36be41c6106b8523ea6c68f5a00273a5522155b7b84bad26d152436f3375df7097ce3abf2421aec32641ed',183746);
INSERT INTO _sqlx_migrations VALUES(37,'remote control enrollments enabled','2026-12-01 16:06:00',1,X'f6a5ab0db36bb9e45ab5285b56090fb453df0a4d4d8d62eace234f0b557f4203c6c455fc67bd7d6e72623c3979ec9405',258448);
INSERT INTO _sqlx_migrations VALUES(38,'external agent config imports','2026-12-01 16:06:00',1,X'e7778522cbe529f5e2ba179b502aee8e5c21272ad820e672ab0a565f7edc9bd0f29171ccf9815c0acc0f89eae0a2b1fc',128724);
INSERT INTO _sqlx_migrations VALUES(39,'threads recency at','2026-12-01 16:06:00',1,X'c217b3d14c08c23603f485af11452ee2b68f65fa8dbaf215f33f53b608c092be8738de3f63d6a38f120edea5af247c17',694603);
INSERT INTO _sqlx_migrations VALUES(40,'threads history mode','2026-12-01 16:06:00',1,X'a7a99674f90a43184e43d66595c4f1da50ae8715a5bfcb1579a2b7b10668335d7f7ab6b6f2d7a7a379272773d803a914',357006);
INSERT INTO _sqlx_migrations VALUES(41,'threads name','2026-12-01 16:06:00',1,X'0dc734dbe4cbcc5ad5a8bbc2fdc1cf770ddea3cb53eb36c55a4da6fa2e8be4cc8e68672f43ac953e727e415e45c50a78',354923);
INSERT INTO _sqlx_migrations VALUES(42,'drop agent jobs','2026-12-01 16:06:00',1,X'cfdc4fd47328d1b67c0c7555125de4fb4add5b3b57fd31ac1987e4d8b0c99b1f5418db9ee7ec2158aed8a2e3dfcfd636',552640);
INSERT INTO _sqlx_migrations VALUES(43,'threads is pinned','2026-12-01 16:06:00',1,X'605128e722bd2521c7e979e9961c16706435e442b3e3a8efa36f6b16c42e3833090906d9a62fde097a109b78e29da830',337396);
INSERT INTO _sqlx_migrations VALUES(44,'external agent config imports provider id','2026-12-01 16:06:00',1,X'5d29223bd1cafe456a4af992a545e8ec420b71331eb12a7427e26512b8a44117d9445b83562f095b3a5a0f11c4f091d2',228503);
INSERT INTO _sqlx_migrations VALUES(45,'threads section','2026-12-01 16:06:00',1,X'a7fadc8caea8b6abeb108f588a91b8e5d1c9e2645ce990f2251b9f0234e6e53d78fc854f1c88c7217cc143016539d691',469295);
INSERT INTO _sqlx_migrations VALUES(46,'threads section order','2026-12-01 16:06:00',1,X'63addf6115c3fb1a22a886108ce6ebff5cd8408f219606dc2f8396836418e56d5be2a6de7b0df877119a28096ee67d22',867573);
INSERT INTO _sqlx_migrations VALUES(47,'rollout migration state','2026-12-01 16:06:00',1,X'1ae117e4ab40813de2b6cfed521585a5396a8dcb7277923d539ed111f5e76424787131ef1de353be5dd78e8228f204cc',203165);
INSERT INTO _sqlx_migrations VALUES(48,'thread section appearance','2026-12-01 16:06:00',1,X'9d298333f7523010502044685009ffe1ed18c3fed7f01fb200d62252f90ab0d897ccf05e478f90150b941ea6c0bd459c',297126);
INSERT INTO _sqlx_migrations VALUES(49,'projects','2026-12-01 16:06:00',1,X'faf45c392bb8572062bbd52f9702966cf62e3d195a1633f54cfe1b7dcb5865a3f951dc75c975179dc9a0ee639f7426a7',733311);
INSERT INTO _sqlx_migrations VALUES(50,'threads section empty preview indexes','2026-12-01 16:06:00',1,X'd2802e96f5fc1900fc6d3d595f040ebca8d25310ae9d1499a12b91f1635617adf5d2b4a93d0807203a22f4a6d4edb77e',396776);
INSERT INTO _sqlx_migrations VALUES(51,'thread artifacts','2026-12-01 16:06:00',1,X'23360a03a7fc307c3fd5bb8b432b66034dd8f8695cdba698b45278c20dd712c1af476b884e192237d80baa08a5f29505',220702);
INSERT INTO _sqlx_migrations VALUES(52,'projects recency','2026-12-01 16:06:00',1,X'071e96313d402e4c3d156f620f3f62b4a468da00ce30a47574d2594623e5e954f3ec2f1e54f043a8e4b602643e868b7d',144337);
INSERT INTO _sqlx_migrations VALUES(53,'threads originator','2026-12-01 16:06:00',1,X'e86ef7ccbcc891b1af27f6aedb26bfe36d79c9d405e48f302eb053cb57ff9b24dbeb0479b48b18e2076efb6bfc4a9287',355674);
INSERT INTO _sqlx_migrations VALUES(54,'threads daybreak enabled','2026-12-01 16:06:00',1,X'e62a9977d99c7eabf36b67b183d86443d062b0aa8d018c42d1299821de4bf59182e16494ab874fd2d4081ef510e759f1',349435);
INSERT INTO _sqlx_migrations VALUES(55,'thread attachments','2026-12-01 16:06:00',1,X'6daadc5527b3f57fa360c5d93199282ba54a42b7598558a9765bd6dcf11f555150fe678ed8163abb2e1861cb51d196c3',3057060);
INSERT INTO _sqlx_migrations VALUES(56,'threads creator identity','2026-12-01 16:06:00',1,X'5de44fac5505249be66fcd640e9ac3d36550854c0db1272eb52cbb6c3d18b207db4cb782686d81089e77ebb57f6819b1',743066);
INSERT INTO _sqlx_migrations VALUES(57,'cleanup guardian thread metadata','2026-12-01 16:06:00',1,X'729562c57bfa8b43d5ae3476c99cef6e81a54709a74283057ce8d2d6f55cf8eae2594fdb7cff4238ebe1e481e7c049e6',105098);
INSERT INTO _sqlx_migrations VALUES(58,'threads archive sort indexes','2026-12-01 16:06:00',1,X'68467af3ce1ff09777c3f7167d522e11d88586fbb80a1588c631cf643a7d4985b221a6c8e8623997b37d44605b7e1091',254041);
INSERT INTO _sqlx_migrations VALUES(59,'thread attachment reverse lookup','2026-12-01 16:06:00',1,X'4297dffb4fb308f0c665e4d126b7d2a96db7be48eb2e13c7e1245a5d95c4df4e66d64e79ad00fec26b0910436703090c',119269);
INSERT INTO _sqlx_migrations VALUES(60,'guardian review feedback','2026-12-01 16:06:00',1,X'd7f0cf0a69fa71999affcd48cc74b2d0a2637b8bbda73bd5819547ccdb15543a75d239311fa07fcf699be9bcbc1874a8',108824);
INSERT INTO _sqlx_migrations VALUES(61,'thread read state','2026-12-01 16:06:00',1,X'4a8337048bb958a21fd5272c1bd670605c84d4063534270d3e41cdc5c5a2e865f0fe6ae3c336ded873877ee2ea10f2e0',103085);
INSERT INTO _sqlx_migrations VALUES(62,'threads attached parent','2026-12-01 16:06:00',1,X'dab8b7c8390f9c764d5d64733da39fa0b79ad4f67931fa15263c1129143c1717bc252930b1a5668ad119c50844950304',436536);
CREATE TABLE threads (
    id TEXT PRIMARY KEY,
    rollout_path TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    model_provider TEXT NOT NULL,
    cwd TEXT NOT NULL,
    title TEXT NOT NULL,
    sandbox_policy TEXT NOT NULL,
    approval_mode TEXT NOT NULL,
    tokens_used INTEGER NOT NULL DEFAULT 0,
    has_user_event INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    archived_at INTEGER,
    git_sha TEXT,
    git_branch TEXT,
    git_origin_url TEXT
, cli_version TEXT NOT NULL DEFAULT '', first_user_message TEXT NOT NULL DEFAULT '', agent_nickname TEXT, agent_role TEXT, memory_mode TEXT NOT NULL DEFAULT 'enabled', model TEXT, reasoning_effort TEXT, agent_path TEXT, created_at_ms INTEGER, updated_at_ms INTEGER, thread_source TEXT, preview TEXT NOT NULL DEFAULT '', recency_at INTEGER NOT NULL DEFAULT 0, recency_at_ms INTEGER NOT NULL DEFAULT 0, history_mode TEXT NOT NULL DEFAULT 'legacy', name TEXT, is_pinned INTEGER NOT NULL DEFAULT 0, thread_section_id TEXT
    REFERENCES thread_sections(id) ON DELETE SET NULL, section_position INTEGER, section_entered_at_ms INTEGER, project_id TEXT
    REFERENCES projects(id) ON DELETE SET NULL, originator TEXT, daybreak_enabled BOOLEAN, creator_user_id TEXT, creator_account_id TEXT, attached_thread_parent_id TEXT);
INSERT INTO threads VALUES('01a2325b-19bf-7c42-a82e-53ca8d551c70','/home/dev/.codex/sessions/2026/12/01/rollout-2026-12-01T16-06-00-01a2325b-19bf-7c42-a82e-53ca8d551c70.jsonl',1796141160,1796141161,'exec','openai','/home/dev/project','Reply with OK only.','{"type":"disabled"}','never',1053,0,0,NULL,NULL,NULL,NULL,'0.169.0','Reply with OK only.',NULL,NULL,'enabled','gpt-5.3-codex',NULL,NULL,1796141160901,1796141161378,'user','Reply with OK only.',1796141161,1796141161111,'paginated',NULL,0,NULL,NULL,NULL,NULL,'codex_exec',NULL,'user-acc_fx','acc_fx',NULL);
CREATE TABLE thread_dynamic_tools (
    thread_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    input_schema TEXT NOT NULL, defer_loading INTEGER NOT NULL DEFAULT 0, namespace TEXT,
    PRIMARY KEY(thread_id, position),
    FOREIGN KEY(thread_id) REFERENCES threads(id) ON DELETE CASCADE
);
CREATE TABLE backfill_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL,
    last_watermark TEXT,
    last_success_at INTEGER,
    updated_at INTEGER NOT NULL
);
INSERT INTO backfill_state VALUES(1,'complete',NULL,1796141160,1796141160);
CREATE TABLE thread_spawn_edges (
    parent_thread_id TEXT NOT NULL,
    child_thread_id TEXT NOT NULL PRIMARY KEY,
    status TEXT NOT NULL
);
CREATE TABLE remote_control_enrollments (
    websocket_url TEXT NOT NULL,
    account_id TEXT NOT NULL,
    app_server_client_name TEXT NOT NULL,
    server_id TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    server_name TEXT NOT NULL,
    updated_at INTEGER NOT NULL, remote_control_enabled INTEGER,
    PRIMARY KEY (websocket_url, account_id, app_server_client_name)
);
CREATE TABLE external_agent_config_imports (
    import_id TEXT PRIMARY KEY,
    completed_at_ms INTEGER NOT NULL,
    successes TEXT NOT NULL,
    failures TEXT NOT NULL
, provider_id TEXT);
CREATE TABLE thread_sections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL
, appearance TEXT);
INSERT INTO thread_sections VALUES('01984de2-8f74-7c91-a3b2-5c5e937cf318','Pinned',NULL);
CREATE TABLE rollout_migration_state (
    migration_id TEXT PRIMARY KEY,
    last_checked_thread_created_at INTEGER,
    last_checked_thread_id TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE rollout_migration_skipped_rollouts (
    migration_id TEXT NOT NULL,
    rollout_path TEXT NOT NULL,
    rollout_size_bytes INTEGER NOT NULL,
    rollout_modified_at_ns INTEGER NOT NULL,
    skip_reason TEXT NOT NULL,
    skipped_at INTEGER NOT NULL,
    PRIMARY KEY (migration_id, rollout_path)
);
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    position INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE project_roots (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (project_id, position)
);
CREATE TABLE project_idempotency_keys (
    key TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS "thread_attachments" (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    attachment_type TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (thread_id, attachment_type, identity_key)
);
CREATE TABLE guardian_review_feedback (
    id TEXT PRIMARY KEY NOT NULL,
    thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    record BLOB NOT NULL
);
CREATE TABLE thread_read_receipts (
    thread_id TEXT PRIMARY KEY NOT NULL,
    first_unread_turn TEXT,
    revision TEXT NOT NULL,
    last_published_turn TEXT
);
INSERT INTO thread_read_receipts VALUES('01a2325b-19bf-7c42-a82e-53ca8d551c70','01a2325b-1a35-7c43-b848-ae32ac5b5e33','a31665ba-3e8b-433d-ba0a-012b4cdcfa0d','01a2325b-1a35-7c43-b848-ae32ac5b5e33');
CREATE INDEX idx_threads_created_at ON threads(created_at DESC, id DESC);
CREATE INDEX idx_threads_updated_at ON threads(updated_at DESC, id DESC);
CREATE INDEX idx_threads_archived ON threads(archived);
CREATE INDEX idx_threads_source ON threads(source);
CREATE INDEX idx_threads_provider ON threads(model_provider);
CREATE INDEX idx_thread_dynamic_tools_thread ON thread_dynamic_tools(thread_id);
CREATE INDEX idx_thread_spawn_edges_parent_status
    ON thread_spawn_edges(parent_thread_id, status);
CREATE TRIGGER threads_created_at_ms_after_insert
AFTER INSERT ON threads
WHEN NEW.created_at_ms IS NULL
BEGIN
    UPDATE threads
    SET created_at_ms = NEW.created_at * 1000
    WHERE id = NEW.id;
END;
CREATE TRIGGER threads_updated_at_ms_after_insert
AFTER INSERT ON threads
WHEN NEW.updated_at_ms IS NULL
BEGIN
    UPDATE threads
    SET updated_at_ms = NEW.updated_at * 1000
    WHERE id = NEW.id;
END;
CREATE TRIGGER threads_created_at_ms_after_update
AFTER UPDATE OF created_at ON threads
WHEN NEW.created_at != OLD.created_at
 AND NEW.created_at_ms IS OLD.created_at_ms
BEGIN
    UPDATE threads
    SET created_at_ms = NEW.created_at * 1000
    WHERE id = NEW.id;
END;
CREATE TRIGGER threads_updated_at_ms_after_update
AFTER UPDATE OF updated_at ON threads
WHEN NEW.updated_at != OLD.updated_at
 AND NEW.updated_at_ms IS OLD.updated_at_ms
BEGIN
    UPDATE threads
    SET updated_at_ms = NEW.updated_at * 1000
    WHERE id = NEW.id;
END;
CREATE INDEX idx_threads_created_at_ms ON threads(created_at_ms DESC, id DESC);
CREATE INDEX idx_threads_updated_at_ms ON threads(updated_at_ms DESC, id DESC);
CREATE INDEX idx_threads_archived_cwd_created_at_ms ON threads(archived, cwd, created_at_ms DESC, id DESC);
CREATE INDEX idx_threads_archived_cwd_updated_at_ms ON threads(archived, cwd, updated_at_ms DESC, id DESC);
CREATE INDEX idx_threads_visible_created_at_ms
    ON threads(archived, created_at_ms DESC)
    WHERE preview <> '';
CREATE INDEX idx_threads_visible_updated_at_ms
    ON threads(archived, updated_at_ms DESC)
    WHERE preview <> '';
CREATE TRIGGER threads_recency_at_after_insert
AFTER INSERT ON threads
WHEN NEW.recency_at_ms = 0
BEGIN
    UPDATE threads
    SET recency_at = NEW.updated_at,
        recency_at_ms = COALESCE(NEW.updated_at_ms, NEW.updated_at * 1000)
    WHERE id = NEW.id;
END;
CREATE INDEX idx_threads_recency_at_ms
    ON threads(recency_at_ms DESC, id DESC);
CREATE INDEX idx_threads_archived_cwd_recency_at_ms
    ON threads(archived, cwd, recency_at_ms DESC, id DESC);
CREATE INDEX idx_threads_visible_recency_at_ms
    ON threads(archived, recency_at_ms DESC, id DESC)
    WHERE preview <> '';
CREATE INDEX idx_threads_pinned_recency_at_ms
    ON threads(archived, recency_at_ms DESC, id DESC)
    WHERE is_pinned = 1 AND preview <> '';
CREATE INDEX idx_projects_position
    ON projects(position ASC, id ASC);
CREATE INDEX idx_threads_project_id
    ON threads(project_id, archived, created_at_ms DESC, id DESC)
    WHERE project_id IS NOT NULL;
CREATE INDEX idx_threads_section_recency_at_ms
    ON threads(archived, thread_section_id, recency_at_ms DESC, id DESC)
    WHERE thread_section_id IS NOT NULL;
CREATE INDEX idx_threads_section_position
    ON threads(archived, thread_section_id, section_position ASC, id ASC)
    WHERE thread_section_id IS NOT NULL;
CREATE INDEX idx_threads_project_recency
    ON threads(project_id, recency_at_ms DESC)
    WHERE archived = 0 AND project_id IS NOT NULL;
CREATE INDEX idx_thread_attachments_thread_created_id
    ON thread_attachments(thread_id, created_at, id);
CREATE INDEX idx_threads_archive_created_at_ms
    ON threads(archived, created_at_ms DESC, id DESC)
    WHERE archived = 1;
CREATE INDEX idx_threads_archive_updated_at_ms
    ON threads(archived, updated_at_ms DESC, id DESC)
    WHERE archived = 1;
CREATE INDEX idx_threads_archive_recency_at_ms
    ON threads(archived, recency_at_ms DESC, id DESC)
    WHERE archived = 1;
CREATE INDEX idx_thread_attachments_identity_thread
    ON thread_attachments(attachment_type, identity_key, thread_id);
CREATE INDEX idx_threads_attached_parent ON threads(attached_thread_parent_id)
    WHERE attached_thread_parent_id IS NOT NULL;
COMMIT;
