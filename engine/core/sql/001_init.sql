-- 001_init: campaigns, the recipient snapshot, the notice queue and the dispatch log.
--
-- States are text with CHECK constraints rather than enum types so that later migrations
-- can add states inside a transaction.

CREATE TABLE crier.campaign (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    incident    text NOT NULL CHECK (incident <> ''),
    policy      text[] NOT NULL CHECK (cardinality(policy) BETWEEN 1 AND 8),
    templates   text,
    meta        jsonb NOT NULL DEFAULT '{}',
    state       text NOT NULL DEFAULT 'draft'
                CHECK (state IN ('draft', 'running', 'paused', 'cancelled', 'completed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    started_at  timestamptz,
    finished_at timestamptz
);

-- One row per `crier campaign load`: where the list came from and what happened to it.
CREATE TABLE crier.list_load (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id      bigint NOT NULL REFERENCES crier.campaign,
    source           text NOT NULL,    -- "csv:PATH", "table:SCHEMA.TABLE" or "query:SQL"
    source_sha256    text,             -- of the CSV file's bytes
    rows_read        integer NOT NULL,
    loaded           integer NOT NULL,
    rejected         integer NOT NULL,
    contacts_dropped integer NOT NULL,
    extra_columns    text[] NOT NULL DEFAULT '{}', -- the list's other columns (template variables)
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    loaded_by        text NOT NULL DEFAULT current_user
);

-- recipient and notice are partitioned by campaign: one partition each per campaign,
-- created by the campaign's first load (import.c), which fills it before attaching it so
-- that PostgreSQL builds its indexes in bulk instead of row by row. A later load of the
-- same campaign inserts into the attached partition. Partitioning by campaign is also the
-- shape a distributed PostgreSQL (Citus) can shard.
--
-- They carry no foreign keys: a load writes a million rows of each, and a per-row FK check
-- (an index probe plus a row lock on the referenced row) tripled the load time. Both are
-- written only by import.c, in the transaction that holds the campaign row locked, which
-- guarantees what the keys would: every notice has its recipient, every recipient its
-- campaign and load.

-- The affected individual as loaded: a snapshot, never changed by later edits of the source.
CREATE TABLE crier.recipient (
    campaign_id  bigint NOT NULL,
    seq          integer NOT NULL,     -- position in the campaign, assigned by the load
    load_id      bigint NOT NULL,
    source_row   text NOT NULL,        -- "line 17" (CSV) or "row 17" (table/query)
    ref          text NOT NULL,
    name         text NOT NULL,
    email        text,                 -- NULL when absent or dropped by validation
    fax          text,                 -- E.164
    address1     text,
    address2     text,
    city         text,
    region       text,
    postal_code  text,
    country      text NOT NULL DEFAULT 'US',
    mailable     boolean NOT NULL,     -- the postal address passed validation
    vars         json NOT NULL DEFAULT '{}',   -- the list's other columns (json, not jsonb:
                                               -- read whole by templates, and cheaper to load)
    notes        text[] NOT NULL DEFAULT '{}', -- contacts dropped at load, and why
    PRIMARY KEY (campaign_id, seq),
    UNIQUE (campaign_id, ref)
) PARTITION BY LIST (campaign_id);

-- The queue: one notice per recipient per campaign. Retry state lives here, not in memory.
CREATE TABLE crier.notice (
    id                 bigint NOT NULL         -- campaign_id * 2^32 + recipient_seq: assigned
                       CHECK (id = campaign_id * 4294967296 + recipient_seq), -- by the load,
                                               -- with no sequence, and unique per recipient
    campaign_id        bigint NOT NULL,
    recipient_seq      integer NOT NULL,
    token              text NOT NULL,      -- 128 random bits (hex) from the loader; the
                                           -- public token is "<id>.<token>", so it needs
                                           -- no index and cannot be guessed from the ref
    state              text NOT NULL
                       CHECK (state IN ('ready', 'held', 'sending', 'sent', 'submitted',
                                        'delivered', 'batched', 'mailed', 'undeliverable',
                                        'cancelled')),
    channel            text NOT NULL,      -- the channel it is on (or ended on)
    channel_index      smallint NOT NULL,  -- position of channel in the campaign's policy
    attempt            integer NOT NULL DEFAULT 0,  -- claims in all
    channel_attempt    integer NOT NULL DEFAULT 0,  -- claims on the current channel
    channel_started_at timestamptz,        -- first claim on the current channel
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner        text,               -- worker that holds the claim
    lease_expires_at   timestamptz,
    reasons            text[] NOT NULL DEFAULT '{}', -- why each channel was left
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'sending') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    PRIMARY KEY (id, campaign_id) -- id alone is unique (see its CHECK); the key must hold
                                  -- the partition column
) PARTITION BY LIST (campaign_id);

-- The claim reads only this: ready notices of one campaign and channel, oldest due first.
-- id makes every key distinct (no posting-list rewrites while a load inserts a million
-- equal keys) and serves the claim's ORDER BY next_attempt_at, id.
CREATE INDEX notice_claim ON crier.notice (campaign_id, channel, next_attempt_at, id)
    WHERE state = 'ready';
-- The lease reaper reads only this.
CREATE INDEX notice_lease ON crier.notice (lease_expires_at) WHERE state = 'sending';

-- The running `crier run` processes and the channels each has enabled. A notice waiting
-- on a channel moves on along its policy only when no live worker serves that channel, so
-- one worker started with a partial configuration cannot reroute everyone's notices.
CREATE TABLE crier.worker (
    id           text PRIMARY KEY,        -- host:pid
    channels     text[] NOT NULL,         -- enabled in its configuration (lanes 0 included)
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Every transition of every notice, and every campaign event: the record auditors read.
CREATE TABLE crier.dispatch_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    campaign_id    bigint NOT NULL,
    event          text NOT NULL
                   CHECK (event IN ('transition', 'late_outcome', 'campaign', 'load', 'bounce',
                                    'returned')),
    notice_id      bigint,
    recipient_ref  text,
    channel        text,            -- the channel this attempt used
    from_state     text,
    to_state       text,
    to_channel     text,            -- set when the notice moved to another channel
    attempt        integer,
    actor          text NOT NULL,   -- worker id (host:pid:lane) or database user
    detail         text,            -- the transport's words: SMTP reply, HTTP status, batch
    reason         text,            -- why it fell back or gave up
    content_sha256 text,            -- of exactly what was sent
    dedupe_key     text             -- 'bounce': notice id and the DSN's Message-ID, so that
                                    -- the same DSN is applied once (bounce.c)
);
-- One index besides the key: every transition writes a row here, and each index is paid
-- for on every claim and record. A campaign's rows are read by scanning (export, report).
CREATE INDEX dispatch_log_notice ON crier.dispatch_log (notice_id);
-- Partial: only 'bounce' rows carry a key, so a transition's row never enters it.
CREATE UNIQUE INDEX dispatch_log_dedupe ON crier.dispatch_log (dedupe_key)
    WHERE dedupe_key IS NOT NULL;
