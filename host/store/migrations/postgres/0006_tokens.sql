-- Users may hold several tokens, each listed, revoked and rotated on its own, and a user can be
-- disabled. The token each user had moves to `user_tokens` (with a random id and no prefix:
-- only its hash was kept).
CREATE TABLE user_tokens (
    id            TEXT COLLATE "C" PRIMARY KEY,
    user_id       TEXT COLLATE "C" NOT NULL,
    name          TEXT,
    prefix        TEXT,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    rotated_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, created_at);

INSERT INTO user_tokens (id, user_id, token_hash, created_at)
    SELECT 'tok_' || substr(md5(random()::text || identifier), 1, 16), identifier, token_hash,
           created_at
    FROM users;

ALTER TABLE users DROP COLUMN token_hash;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;
