-- A typical application's user tables, as presets/postgres.toml maps them.
-- psql -v ON_ERROR_STOP=1 -d app -f presets/postgres.sql
-- PostgreSQL 13 or later (gen_random_uuid() is built in).

CREATE TABLE users (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_name    text        NOT NULL,
    external_id  text,
    given_name   text,
    family_name  text,
    display_name text,
    email        text,
    title        text,
    department   text,
    employee_number text,
    active       boolean     NOT NULL DEFAULT true,
    -- An argon2id PHC string written by the gateway; the application checks logins with it.
    password_hash text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- SCIM userName is case-insensitive: two users may not differ only in case. A create or
-- rename that breaks it is refused by the database (the gateway answers 409 uniqueness).
CREATE UNIQUE INDEX users_user_name_key ON users (lower(user_name));

CREATE TABLE groups (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text        NOT NULL,
    external_id  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (lower(display_name));

-- One row per (group, user). Deleting a user or a group deletes its rows: no dangling member.
CREATE TABLE memberships (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
-- "Which groups is this user in" (a user's `groups`) without scanning the table.
CREATE INDEX memberships_user_id ON memberships (user_id);

-- The gateway's database user: rows only, no DDL.
-- CREATE ROLE scim_gateway LOGIN PASSWORD '…';
-- GRANT SELECT, INSERT, UPDATE, DELETE ON users, groups, memberships TO scim_gateway;
