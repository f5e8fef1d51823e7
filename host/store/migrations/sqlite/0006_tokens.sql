-- Users may hold several tokens, each listed, revoked and rotated on its own, and a user can be
-- disabled. The token each user had moves to `user_tokens` (with a random id and no prefix:
-- only its hash was kept), and `users` is rebuilt without it (SQLite cannot drop a UNIQUE
-- column).
CREATE TABLE user_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    name          TEXT,
    prefix        TEXT,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    rotated_at    INTEGER,
    last_used_at  INTEGER
) STRICT;
CREATE INDEX user_tokens_user ON user_tokens (user_id, created_at);

INSERT INTO user_tokens (id, user_id, token_hash, created_at)
    SELECT 'tok_' || lower(hex(randomblob(8))), identifier, token_hash, created_at FROM users;

CREATE TABLE users_new (
    identifier  TEXT PRIMARY KEY,
    email       TEXT,
    role        TEXT NOT NULL,
    teams       TEXT NOT NULL DEFAULT '[]',
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;
INSERT INTO users_new (identifier, email, role, teams, disabled, created_at)
    SELECT identifier, email, role, teams, 0, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
