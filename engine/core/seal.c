/*
 * seal.c - sealing the dispatch log in hash-chained blocks, and verifying the chains, from
 * the database or from an export with no database at all. seal.h defines the hashes; this
 * file is their only implementation, so sealing and verifying cannot drift apart.
 *
 * Why the seal waits for writers (crier.audit_seal_horizon, 004_audit.sql): log ids are
 * handed out when a row is inserted, not when it commits, so a transaction still open can
 * commit a row with an id lower than rows already visible. Sealing up to the highest
 * visible id would then seal a range that later gains a row, which verify would rightly
 * call an insertion. The horizon is read after every writer has finished, and every row at
 * or below it is then final.
 */
#include "crier/seal.h"
#include "crier/progress.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/jsonout.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_LOCK_CLASS  "740120" /* pg_advisory_xact_lock: one sealer at a time */
#define FETCH_ROWS       "1000"   /* a FETCH under main.c's malloc trim threshold */
#define LOCATOR_ENTRY    16       /* id (8 bytes, big-endian) and the row hash's first 8 */
#define SEAL_VERSION     1
#define FIELD_ID         0
#define FIELD_AT         1
#define FIELD_CAMPAIGN   2
#define FIELD_CONTENT_AT 17

const char *const seal_field_names[SEAL_FIELDS] = {
    "id",      "at",         "campaign_id",    "event",      "notice_id", "recipient_ref",
    "channel", "from_state", "to_state",       "to_channel", "attempt",   "actor",
    "detail",  "reason",     "content_sha256", "dedupe_key", "hold_id",   "content_at",
};

/* The progress line of the command running (seal_progress); one command per process. */
static bool progress_wanted;
static struct progress bar;

void seal_progress(bool on)
{
    progress_wanted = on;
}

/* fields exported as JSON integers; every other one is a string */
static const bool field_integer[SEAL_FIELDS] = {
    [0] = true, [2] = true, [4] = true, [10] = true, [16] = true,
};

/* The sealed timestamps: read as the server's text, written as DB_TIME_US (db.h) */
struct row_times {
    char text[2][DB_TIME_MAX];
};

/* row_read - the sealed texts of a row read with seal_select_list, into value (pointing
 * into result and times, which must outlive them). */
static int row_read(struct crier_db *db, const PGresult *result, int row,
                    const char *value[SEAL_FIELDS], struct row_times *times)
{
    static const int time_fields[2] = {FIELD_AT, FIELD_CONTENT_AT};
    for (int f = 0; f < SEAL_FIELDS; f++)
        value[f] = db_value(result, row, f);
    for (int i = 0; i < 2; i++) {
        const char **v = &value[time_fields[i]];
        int r = db_time_us(db, *v, times->text[i], v);
        if (r < 0)
            return r;
    }
    return 0;
}

/* A log row's columns in seal_field_names' order: each the canonical text but the
 * timestamps, which come as the server's own text and row_read writes as DB_TIME_US. */
static const char seal_select_list[] =
    "id, at, campaign_id, event, notice_id, recipient_ref, channel, from_state, to_state,"
    " to_channel, attempt, actor, detail, reason, content_sha256, dedupe_key, hold_id, content_at";

static const char zero_hash[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- the hashes ----------------------------------------------------------------------- */

/* One block being hashed: the rows fed so far. */
struct block_hash {
    EVP_MD_CTX *ctx;
    EVP_MD_CTX *row_ctx; /* each row's own hash */
    char *row;           /* the row being encoded */
    size_t row_cap;
    unsigned char *locator;
    size_t locator_len, locator_cap;
    long rows;
    int64_t first_id, last_id;
};

/* What a block's row in crier.audit_block (or an export's block line) says. */
struct block_meta {
    int64_t campaign_id;
    long seq;
    int64_t lo, hi;
    long rows;
    char prev[65];
    char sha[65];
};

/*
 * SHA-256 fetched once from OpenSSL's provider. EVP_sha256() and SHA256() fetch it anew at
 * every init, under a lock of the provider store: per row of the log that was a twentieth of
 * a seal's CPU (perf). Fetched at the first use by whichever thread seals, and kept for the
 * process's life.
 */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL)
        abort();
}

static EVP_MD_CTX *digest_start(EVP_MD_CTX *ctx)
{
    pthread_once(&sha256_once, sha256_fetch);
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
        abort();
    if (EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1)
        abort();
    return ctx;
}

static void block_hash_start(struct block_hash *b)
{
    b->ctx = digest_start(b->ctx);
    b->locator_len = 0;
    b->rows = 0;
    b->first_id = b->last_id = 0;
}

static void block_hash_free(struct block_hash *b)
{
    EVP_MD_CTX_free(b->ctx);
    EVP_MD_CTX_free(b->row_ctx);
    free(b->row);
    free(b->locator);
    memset(b, 0, sizeof(*b));
}

/* block_hash_row - add one row, given as its canonical texts (NULL for SQL NULL). */
static void block_hash_row(struct block_hash *b, const char *const value[SEAL_FIELDS])
{
    /* the canonical encoding in one buffer, hashed in one call: a seal or verify hashes
     * every row of the log, and per-field digest updates cost more than the hashing */
    size_t need = 2;
    size_t lengths[SEAL_FIELDS];
    for (int i = 0; i < SEAL_FIELDS; i++) {
        lengths[i] = value[i] ? strlen(value[i]) : 0;
        need += lengths[i] + 24;
    }
    if (need > b->row_cap) {
        b->row_cap = need * 2;
        b->row = xrealloc(b->row, b->row_cap);
    }
    char *p = b->row;
    for (int i = 0; i < SEAL_FIELDS; i++) {
        if (value[i] == NULL) {
            *p++ = '~';
            continue;
        }
        char digits[24];
        int n = 0;
        size_t length = lengths[i];
        do {
            digits[n++] = (char)('0' + length % 10);
            length /= 10;
        } while (length > 0);
        while (n > 0)
            *p++ = digits[--n];
        *p++ = ':';
        memcpy(p, value[i], lengths[i]);
        p += lengths[i];
    }
    *p++ = '\n';
    unsigned char digest[SHA256_DIGEST_LENGTH];
    b->row_ctx = digest_start(b->row_ctx);
    if (EVP_DigestUpdate(b->row_ctx, b->row, (size_t)(p - b->row)) != 1 ||
        EVP_DigestFinal_ex(b->row_ctx, digest, NULL) != 1)
        abort();
    EVP_DigestUpdate(b->ctx, digest, 32);

    int64_t id = strtoll(value[FIELD_ID], NULL, 10);
    if (b->locator_len + LOCATOR_ENTRY > b->locator_cap) {
        b->locator_cap = b->locator_cap ? 2 * b->locator_cap : 4096;
        b->locator = xrealloc(b->locator, b->locator_cap);
    }
    unsigned char *entry = b->locator + b->locator_len;
    for (int i = 0; i < 8; i++)
        entry[i] = (unsigned char)((uint64_t)id >> (56 - 8 * i));
    memcpy(entry + 8, digest, 8);
    b->locator_len += LOCATOR_ENTRY;
    if (b->rows == 0)
        b->first_id = id;
    b->last_id = id;
    b->rows++;
}

/* block_hash_finish - the block's hash over its rows and meta (all but meta->sha). */
static void block_hash_finish(struct block_hash *b, const struct block_meta *meta, char out[65])
{
    char trailer[256];
    int n = snprintf(trailer, sizeof(trailer),
                     "crier-seal v%d\ncampaign %" PRId64 "\nseq %ld\nlo %" PRId64 "\nhi %" PRId64
                     "\nrows %ld\nprev %s\n",
                     SEAL_VERSION, meta->campaign_id, meta->seq, meta->lo, meta->hi, meta->rows,
                     meta->prev);
    EVP_DigestUpdate(b->ctx, trailer, (size_t)n);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(b->ctx, digest, &digest_len);
    hex_write(out, digest, 32);
}

/* hex_encode - a block's locator (16 bytes per row of the log) as hex: a printf per byte
 * here was a tenth of a seal's CPU, hence crier.h's hex_write. */
static char *hex_encode(const unsigned char *bytes, size_t len)
{
    char *hex = xmalloc(2 * len + 1);
    hex_write(hex, bytes, len);
    return hex;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 0; /* only an edited export has other characters; the locator only points */
}

static unsigned char *hex_decode(const char *hex, size_t *ret_len)
{
    size_t len = strlen(hex) / 2;
    unsigned char *bytes = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (unsigned char)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
    *ret_len = len;
    return bytes;
}

static int64_t locator_id(const unsigned char *entry)
{
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | entry[i];
    return (int64_t)id;
}

/*
 * locate - the first row where the rows as sealed (the stored locator) and as found
 * differ, in words. The locator only points: the block hash is what proves the break.
 */
static void locate(const unsigned char *sealed, size_t sealed_len, const unsigned char *found,
                   size_t found_len, char *out, size_t out_size)
{
    size_t n_sealed = sealed_len / LOCATOR_ENTRY, n_found = found_len / LOCATOR_ENTRY;
    for (size_t i = 0; i < n_sealed || i < n_found; i++) {
        if (i >= n_found) {
            snprintf(out, out_size, "row id %" PRId64 " is missing (deleted after sealing)",
                     locator_id(sealed + i * LOCATOR_ENTRY));
            return;
        }
        if (i >= n_sealed) {
            snprintf(out, out_size,
                     "row id %" PRId64 " was not there when the block was sealed (inserted)",
                     locator_id(found + i * LOCATOR_ENTRY));
            return;
        }
        int64_t a = locator_id(sealed + i * LOCATOR_ENTRY),
                b = locator_id(found + i * LOCATOR_ENTRY);
        if (a < b) {
            snprintf(out, out_size, "row id %" PRId64 " is missing (deleted after sealing)", a);
            return;
        }
        if (b < a) {
            snprintf(out, out_size,
                     "row id %" PRId64 " was not there when the block was sealed (inserted)", b);
            return;
        }
        if (memcmp(sealed + i * LOCATOR_ENTRY + 8, found + i * LOCATOR_ENTRY + 8, 8) != 0) {
            snprintf(out, out_size,
                     "row id %" PRId64 " differs from the row that was sealed (edited, or "
                     "swapped with another row)",
                     a);
            return;
        }
    }
    snprintf(out, out_size,
             "the rows are as sealed; the block's own record (number, range, count or "
             "previous hash) was changed");
}

/* ---- one chain being verified ----------------------------------------------------------- */

struct chain {
    int64_t campaign_id;
    const char *name;
    struct block_hash hash;
    long seq;         /* blocks checked */
    char prev[65];    /* the last checked block's hash */
    long sealed_rows; /* rows in checked blocks */
    long unsealed;    /* rows after the last block, not yet sealed */
    bool broken;
    long broken_seq; /* 0: not in a block */
    char problem[512];
    bool expected_seen; /* --expect-head: the hash was one of this chain's blocks */
};

static void chain_init(struct chain *c, int64_t campaign_id, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->campaign_id = campaign_id;
    c->name = name;
    memcpy(c->prev, zero_hash, sizeof(c->prev));
    block_hash_start(&c->hash);
}

static void chain_break(struct chain *c, long seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void chain_break(struct chain *c, long seq, const char *fmt, ...)
{
    if (c->broken)
        return;
    c->broken = true;
    c->broken_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->problem, sizeof(c->problem), fmt, ap);
    va_end(ap);
}

/*
 * chain_close - the rows fed since the last block make block meta: check its place in the
 * chain and its hash. sealed_locator (may be NULL) names the row when the hash differs.
 */
static void chain_close(struct chain *c, const struct block_meta *meta,
                        const unsigned char *sealed_locator, size_t sealed_locator_len,
                        const char *expect_head)
{
    if (c->broken)
        return;
    if (meta->seq != c->seq + 1) {
        chain_break(c, meta->seq, "block %ld follows block %ld: block %ld is missing", meta->seq,
                    c->seq, c->seq + 1);
        return;
    }
    if (strcmp(meta->prev, c->prev) != 0) {
        chain_break(c, meta->seq,
                    "block %ld does not name block %ld's hash as its previous: the chain was "
                    "cut or a block replaced",
                    meta->seq, c->seq);
        return;
    }
    char sha[65];
    block_hash_finish(&c->hash, meta, sha);
    if (strcmp(sha, meta->sha) != 0) {
        char where[256] = "";
        if (sealed_locator)
            locate(sealed_locator, sealed_locator_len, c->hash.locator, c->hash.locator_len, where,
                   sizeof(where));
        else
            snprintf(where, sizeof(where), "the block's rows were changed");
        chain_break(c, meta->seq,
                    "block %ld (rows with ids %" PRId64 "..%" PRId64 ") does not match its "
                    "hash: %s",
                    meta->seq, meta->lo + 1, meta->hi, where);
        return;
    }
    c->seq = meta->seq;
    memcpy(c->prev, meta->sha, sizeof(c->prev));
    c->sealed_rows += c->hash.rows;
    if (expect_head && strcmp(expect_head, meta->sha) == 0)
        c->expected_seen = true;
    block_hash_start(&c->hash);
}

/* chain_report - one campaign's verdict, as text or a JSON object added to results. */
static void chain_report(const struct chain *c, bool json, json_t *results, FILE *out)
{
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:b, s:I, s:I, s:I, s:s?}", "campaign", c->name,
                              "campaign_id", (json_int_t)c->campaign_id, "intact", !c->broken,
                              "blocks", (json_int_t)c->seq, "sealed_rows",
                              (json_int_t)c->sealed_rows, "unsealed_rows", (json_int_t)c->unsealed,
                              "head_sha256", c->seq > 0 ? c->prev : NULL);
        if (c->broken) {
            json_object_set_new(o, "broken_block", json_integer(c->broken_seq));
            json_object_set_new(o, "problem", json_string(c->problem));
        }
        json_array_append_new(results, o);
        return;
    }
    if (c->broken) {
        fprintf(out, "campaign %s: BROKEN: %s\n", c->name, c->problem);
        fprintf(out, "  intact before it: %ld blocks, %ld rows\n", c->seq, c->sealed_rows);
        return;
    }
    fprintf(out, "campaign %s: intact: %ld rows in %ld blocks", c->name, c->sealed_rows, c->seq);
    if (c->seq > 0)
        fprintf(out, ", head block %ld sha256 %s", c->seq, c->prev);
    if (c->unsealed > 0)
        fprintf(out, "; %ld newer rows not sealed yet", c->unsealed);
    fputc('\n', out);
}

/* ---- sealing ---------------------------------------------------------------------------- */

/* One campaign's open block during a seal round. */
struct sealing {
    int64_t campaign_id;
    long seq;      /* the last block's number */
    char prev[65]; /* and hash */
    int64_t lo;    /* where the open block starts */
    struct block_hash hash;
};

static int block_insert(struct crier_db *db, struct sealing *s, int64_t hi)
{
    struct block_meta meta = {
        .campaign_id = s->campaign_id,
        .seq = s->seq + 1,
        .lo = s->lo,
        .hi = hi,
        .rows = s->hash.rows,
    };
    memcpy(meta.prev, s->prev, sizeof(meta.prev));
    block_hash_finish(&s->hash, &meta, meta.sha);
    char *locator = hex_encode(s->hash.locator, s->hash.locator_len);
    const char *params[] = {
        DB_NUM(meta.campaign_id), DB_NUM(meta.seq), DB_NUM(meta.lo), DB_NUM(meta.hi),
        DB_NUM(meta.rows),        meta.prev,        meta.sha,        locator};
    int r = db_exec(db,
                    "INSERT INTO crier.audit_block (campaign_id, seq, version, lo_id, hi_id, rows,"
                    " prev_sha256, sha256, locator)"
                    " VALUES ($1, $2, 1, $3, $4, $5, $6, $7, decode($8, 'hex'))",
                    8, params);
    free(locator);
    if (r < 0)
        return r;
    s->seq = meta.seq;
    memcpy(s->prev, meta.sha, sizeof(s->prev));
    s->lo = hi;
    block_hash_start(&s->hash);
    return 0;
}

static int64_t query_int(struct crier_db *db, const char *sql, int nparams,
                         const char *const *params, int *ret)
{
    PGresult *result = NULL;
    *ret = db_query(db, sql, nparams, params, &result);
    if (*ret < 0)
        return 0;
    int64_t value = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return value;
}

/* A campaign's newest block ($1 its id). */
static const char last_block_sql[] =
    "SELECT seq, sha256 FROM crier.audit_block WHERE campaign_id = $1"
    " ORDER BY seq DESC LIMIT 1";

/* seal_horizon - the last log row every writer in flight has committed, in a transaction
 * of its own so that its lock is held only while it waits for them. Once granted, the lock
 * stops every writer of the log until this transaction ends: should this process stop
 * between the answer and its COMMIT (SIGSTOP, a debugger, a frozen VM), the server ends
 * the session after SEAL_IDLE_MS idle instead of letting every lane wait on it. */
#define SEAL_IDLE_MS 10000
static int seal_horizon(struct crier_db *db, long lock_timeout_ms, int64_t *ret_horizon)
{
    int r = db_begin(db);
    if (r < 0)
        return r;
    char timeout[64];
    snprintf(timeout, sizeof(timeout), "SET LOCAL lock_timeout = %ld", lock_timeout_ms);
    r = db_exec(db, timeout, 0, NULL);
    if (r == 0) {
        snprintf(timeout, sizeof(timeout), "SET LOCAL idle_in_transaction_session_timeout = %d",
                 SEAL_IDLE_MS);
        r = db_exec(db, timeout, 0, NULL);
    }
    *ret_horizon = r < 0 ? 0 : query_int(db, "SELECT crier.audit_seal_horizon()", 0, NULL, &r);
    return db_end(db, r);
}

/* One sealing pass: a block being hashed per campaign met, and what was sealed. */
struct seal_pass {
    struct sealing *open;
    size_t open_count;
    int64_t sealed_to; /* the last row sealed before the pass */
    long block_rows, rows, blocks;
};

/* seal_campaign - the open block of campaign id (as the row has it), begun after its
 * last sealed block when the pass meets the campaign first. */
static int seal_campaign(struct crier_db *db, struct seal_pass *pass, const char *id,
                         struct sealing **ret)
{
    int64_t campaign = strtoll(id, NULL, 10);
    for (size_t i = 0; i < pass->open_count; i++) {
        if (pass->open[i].campaign_id == campaign) {
            *ret = &pass->open[i];
            return 0;
        }
    }
    pass->open = xreallocarray(pass->open, pass->open_count + 1, sizeof(*pass->open));
    struct sealing *s = &pass->open[pass->open_count++];
    memset(s, 0, sizeof(*s));
    s->campaign_id = campaign;
    s->lo = pass->sealed_to;
    memcpy(s->prev, zero_hash, sizeof(s->prev));
    block_hash_start(&s->hash);
    *ret = s;
    const char *p[] = {id};
    PGresult *last = NULL;
    int r = db_query(db, last_block_sql, 1, p, &last);
    if (r < 0)
        return r;
    if (PQntuples(last) == 1) {
        s->seq = strtol(PQgetvalue(last, 0, 0), NULL, 10);
        snprintf(s->prev, sizeof(s->prev), "%s", PQgetvalue(last, 0, 1));
    }
    PQclear(last);
    return 0;
}

/* seal_batch - one FETCH's rows into their campaigns' blocks; a full block is stored. */
static int seal_batch(struct crier_db *db, struct seal_pass *pass, PGresult *result)
{
    int r = 0;
    for (int row = 0; row < PQntuples(result) && r == 0; row++) {
        const char *value[SEAL_FIELDS];
        struct row_times times;
        r = row_read(db, result, row, value, &times);
        struct sealing *s = NULL;
        if (r == 0)
            r = seal_campaign(db, pass, value[FIELD_CAMPAIGN], &s);
        if (r < 0)
            break;
        block_hash_row(&s->hash, value);
        pass->rows++;
        if (s->hash.rows >= pass->block_rows) {
            r = block_insert(db, s, s->hash.last_id);
            pass->blocks++;
        }
    }
    return r;
}

/* seal_rows - hash the rows after pass->sealed_to up to horizon, then store each
 * campaign's last (partial) block. */
static int seal_rows(struct crier_db *db, struct seal_pass *pass, int64_t horizon)
{
    const char *range[] = {DB_NUM(pass->sealed_to), DB_NUM(horizon)};
    char *declare = xasprintf("DECLARE seal_rows NO SCROLL CURSOR FOR SELECT %s"
                              " FROM crier.dispatch_log WHERE id > $1 AND id <= $2 ORDER BY id",
                              seal_select_list);
    int r = db_exec(db, declare, 2, range);
    free(declare);
    while (r == 0) {
        PGresult *result = NULL;
        r = db_query(db, "FETCH " FETCH_ROWS " FROM seal_rows", 0, NULL, &result);
        if (r < 0)
            return r;
        if (PQntuples(result) == 0) {
            PQclear(result);
            break;
        }
        r = seal_batch(db, pass, result);
        PQclear(result);
    }
    for (size_t i = 0; i < pass->open_count && r == 0; i++) {
        if (pass->open[i].hash.rows > 0) {
            r = block_insert(db, &pass->open[i], horizon);
            pass->blocks++;
        }
    }
    return r;
}

int seal_run(struct crier_db *db, enum seal_turn turn, long block_rows, long lock_timeout_ms,
             long *ret_rows, long *ret_blocks)
{
    struct seal_pass pass = {.block_rows = block_rows > 0 ? block_rows : 10000};
    /* 1: the horizon */
    int64_t horizon = 0;
    int r = seal_horizon(db, lock_timeout_ms, &horizon);
    if (r < 0)
        return r;
    /* 2: hash the rows up to it, one sealer at a time. A sealer that skips its turn never
     * waits in the lock: with several processes each main thread would otherwise queue
     * there behind the others' hashing, its housekeeping (heartbeat, reaper) stopped
     * meanwhile (docs/benchmarks.md, "The seal with two processes"). */
    r = db_begin(db);
    if (r < 0)
        return r;
    if (turn == SEAL_SKIP) {
        const char *try_sql = "SELECT pg_try_advisory_xact_lock(" SEAL_LOCK_CLASS ", 0)::int";
        if (query_int(db, try_sql, 0, NULL, &r) == 0 && r == 0)
            return db_end(db, -EBUSY); /* rolled back: nothing was done */
    } else {
        r = db_exec(db, "SELECT pg_advisory_xact_lock(" SEAL_LOCK_CLASS ", 0)", 0, NULL);
    }
    if (r == 0)
        pass.sealed_to =
            query_int(db, "SELECT coalesce(max(hi_id), 0) FROM crier.audit_block", 0, NULL, &r);
    if (r == 0 && pass.sealed_to < horizon)
        r = seal_rows(db, &pass, horizon);
    for (size_t i = 0; i < pass.open_count; i++)
        block_hash_free(&pass.open[i].hash);
    free(pass.open);
    r = db_end(db, r);
    if (r < 0)
        return r;
    if (ret_rows)
        *ret_rows = pass.rows;
    if (ret_blocks)
        *ret_blocks = pass.blocks;
    return 0;
}

/* verdict - the last words of a verify (the expected head, the JSON document, which takes
 * results): 0 intact, 1 broken. */
static int verdict(bool broken, const char *expect_head, bool expected_seen, bool json,
                   json_t *results, FILE *out)
{
    if (expect_head && !expected_seen) {
        broken = true;
        if (!json)
            fprintf(out, "BROKEN: no block has the expected head hash %s\n", expect_head);
    }
    if (json) {
        json_t *report = json_pack("{s:b, s:o}", "intact", !broken, "campaigns", results);
        if (expect_head)
            json_object_set_new(report, "expected_head_found", json_boolean(expected_seen));
        json_out(out, report);
    }
    return broken ? 1 : 0;
}

/* Campaign $1, or every campaign when $1 is NULL, in id order. */
static const char campaigns_sql[] =
    "SELECT id, name FROM crier.campaign WHERE $1::text IS NULL OR name = $1 ORDER BY id";

/* ---- verifying from the database ------------------------------------------------------ */

/* A block's locator ($1 campaign id, $2 seq). */
static const char locator_sql[] =
    "SELECT encode(locator, 'hex') FROM crier.audit_block WHERE campaign_id = $1 AND seq = $2";

static int stored_locator(struct crier_db *db, int64_t campaign_id, long seq, unsigned char **ret,
                          size_t *ret_len)
{
    const char *params[] = {DB_NUM(campaign_id), DB_NUM(seq)};
    PGresult *result = NULL;
    int r = db_query(db, locator_sql, 2, params, &result);
    if (r < 0)
        return r;
    if (PQntuples(result) == 1)
        *ret = hex_decode(PQgetvalue(result, 0, 0), ret_len);
    PQclear(result);
    return 0;
}

static void meta_from_row(PGresult *result, int row, int64_t campaign_id, struct block_meta *m)
{
    m->campaign_id = campaign_id;
    m->seq = strtol(PQgetvalue(result, row, 0), NULL, 10);
    m->lo = strtoll(PQgetvalue(result, row, 1), NULL, 10);
    m->hi = strtoll(PQgetvalue(result, row, 2), NULL, 10);
    m->rows = strtol(PQgetvalue(result, row, 3), NULL, 10);
    snprintf(m->prev, sizeof(m->prev), "%s", PQgetvalue(result, row, 4));
    snprintf(m->sha, sizeof(m->sha), "%s", PQgetvalue(result, row, 5));
}

static void close_stored(struct crier_db *db, struct chain *c, const struct block_meta *meta,
                         const char *expect_head)
{
    /* the hash is checked first (on a copy); the locator is read only for a block that
     * fails it */
    struct block_hash probe = {.ctx = EVP_MD_CTX_new()};
    if (probe.ctx == NULL || EVP_MD_CTX_copy_ex(probe.ctx, c->hash.ctx) != 1)
        abort();
    char sha[65];
    block_hash_finish(&probe, meta, sha);
    EVP_MD_CTX_free(probe.ctx);
    unsigned char *locator = NULL;
    size_t locator_len = 0;
    if (strcmp(sha, meta->sha) != 0)
        stored_locator(db, c->campaign_id, meta->seq, &locator, &locator_len);
    chain_close(c, meta, locator, locator_len, expect_head);
    free(locator);
}

/* A campaign's blocks in order ($1 its id), the columns meta_from_row reads. */
static const char blocks_sql[] =
    "SELECT seq, lo_id, hi_id, rows, prev_sha256, sha256 FROM crier.audit_block"
    " WHERE campaign_id = $1 ORDER BY seq";

/* campaign_rows_open - cursor name over the log rows of campaign params[0], in id order,
 * in the columns seal_select_list names. */
static int campaign_rows_open(struct crier_db *db, const char *name, const char *const *params)
{
    char *declare = xasprintf("DECLARE %s NO SCROLL CURSOR FOR SELECT %s"
                              " FROM crier.dispatch_log WHERE campaign_id = $1 ORDER BY id",
                              name, seal_select_list);
    int r = db_exec(db, declare, 1, params);
    free(declare);
    return r;
}

/* verify_campaign - walk one campaign's rows (a cursor, in id order) against its blocks. */
static int verify_campaign(struct crier_db *db, struct chain *c, int64_t horizon,
                           const char *expect_head)
{
    const char *params[] = {DB_NUM(c->campaign_id)};
    PGresult *blocks = NULL;
    int r = db_query(db, blocks_sql, 1, params, &blocks);
    if (r < 0)
        return r;
    int nblocks = PQntuples(blocks), b = 0;
    struct block_meta meta = {0};
    if (nblocks > 0)
        meta_from_row(blocks, 0, c->campaign_id, &meta);
    r = campaign_rows_open(db, "verify_rows", params);
    PGresult *result = NULL;
    while (r == 0 && !c->broken) {
        r = db_query(db, "FETCH " FETCH_ROWS " FROM verify_rows", 0, NULL, &result);
        if (r < 0)
            break;
        int n = PQntuples(result);
        if (n == 0)
            break;
        progress_add(&bar, n);
        for (int row = 0; row < n && !c->broken && r == 0; row++) {
            const char *value[SEAL_FIELDS];
            struct row_times times;
            r = row_read(db, result, row, value, &times);
            if (r < 0)
                break;
            int64_t row_id = strtoll(value[FIELD_ID], NULL, 10);
            while (b < nblocks && row_id > meta.hi) {
                close_stored(db, c, &meta, expect_head);
                if (++b < nblocks)
                    meta_from_row(blocks, b, c->campaign_id, &meta);
            }
            if (c->broken)
                break;
            if (b < nblocks) {
                if (row_id <= meta.lo)
                    chain_break(c, meta.seq,
                                "row id %" PRId64 " lies between blocks %ld and %ld: written into "
                                "a sealed range (inserted after sealing)",
                                row_id, meta.seq - 1, meta.seq);
                else
                    block_hash_row(&c->hash, value);
            } else if (row_id <= horizon) {
                chain_break(c, 0,
                            "row id %" PRId64 " is at or below the seal horizon (%" PRId64
                            ") but in no block: the block that sealed it was removed, or the "
                            "row was inserted after sealing",
                            row_id, horizon);
            } else {
                c->unsealed++;
            }
        }
        PQclear(result);
        result = NULL;
    }
    PQclear(result);
    while (r == 0 && b < nblocks && !c->broken) {
        close_stored(db, c, &meta, expect_head);
        if (++b < nblocks)
            meta_from_row(blocks, b, c->campaign_id, &meta);
    }
    PQclear(blocks);
    if (r == 0)
        r = db_exec(db, "CLOSE verify_rows", 0, NULL);
    return r;
}

int seal_verify(struct crier_db *db, const char *campaign, const char *expect_head, bool json,
                FILE *out)
{
    /* one snapshot for the blocks and the rows */
    int r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (r < 0)
        return r;
    PGresult *campaigns = NULL;
    const char *params[] = {campaign};
    r = db_query(db, campaigns_sql, 1, params, &campaigns);
    if (r < 0) {
        db_rollback(db);
        return r;
    }
    if (campaign && PQntuples(campaigns) == 0) {
        PQclear(campaigns);
        db_rollback(db);
        return -ENOENT;
    }
    int64_t horizon =
        query_int(db, "SELECT coalesce(max(hi_id), 0) FROM crier.audit_block", 0, NULL, &r);
    json_t *results = json ? json_array() : NULL;
    bool broken = false, expected_seen = false;
    progress_start(&bar, progress_wanted, "audit verify");
    for (int i = 0; r == 0 && i < PQntuples(campaigns); i++) {
        struct chain c;
        chain_init(&c, strtoll(PQgetvalue(campaigns, i, 0), NULL, 10), PQgetvalue(campaigns, i, 1));
        r = verify_campaign(db, &c, horizon, expect_head);
        if (r == 0) {
            progress_clear(&bar);
            chain_report(&c, json, results, out);
        }
        broken = broken || c.broken;
        expected_seen = expected_seen || c.expected_seen;
        block_hash_free(&c.hash);
    }
    progress_end(&bar);
    PQclear(campaigns);
    db_rollback(db);
    if (r < 0) {
        json_decref(results);
        return r;
    }
    return verdict(broken, expect_head, expected_seen, json, results, out);
}

/* ---- head ---------------------------------------------------------------------------- */

/* Each campaign's newest block and its row count ($1 one campaign's name, or NULL). */
static const char heads_sql[] =
    "SELECT c.name, b.seq, b.hi_id, b.sha256,"
    " to_char(b.sealed_at AT TIME ZONE 'UTC', " DB_TIME_S "),"
    " (SELECT sum(rows) FROM crier.audit_block x WHERE x.campaign_id = c.id)"
    " FROM crier.campaign c LEFT JOIN LATERAL (SELECT * FROM crier.audit_block a"
    "  WHERE a.campaign_id = c.id ORDER BY seq DESC LIMIT 1) b ON true"
    " WHERE $1::text IS NULL OR c.name = $1 ORDER BY c.id";

int seal_head(struct crier_db *db, const char *campaign, bool json, FILE *out)
{
    const char *params[] = {campaign};
    PGresult *result = NULL;
    int r = db_query(db, heads_sql, 1, params, &result);
    if (r < 0)
        return r;
    if (campaign && PQntuples(result) == 0) {
        PQclear(result);
        return -ENOENT;
    }
    json_t *heads = json ? json_array() : NULL;
    for (int i = 0; i < PQntuples(result); i++) {
        const char *name = PQgetvalue(result, i, 0);
        bool sealed = !PQgetisnull(result, i, 1);
        if (json) {
            json_t *o = json_pack("{s:s}", "campaign", name);
            if (sealed) {
                json_object_set_new(o, "block", json_integer(atol(PQgetvalue(result, i, 1))));
                json_object_set_new(o, "last_id",
                                    json_integer(strtoll(PQgetvalue(result, i, 2), NULL, 10)));
                json_object_set_new(o, "sha256", json_string(PQgetvalue(result, i, 3)));
                json_object_set_new(o, "sealed_at", json_string(PQgetvalue(result, i, 4)));
                json_object_set_new(o, "sealed_rows",
                                    json_integer(strtoll(PQgetvalue(result, i, 5), NULL, 10)));
            } else {
                json_object_set_new(o, "block", json_null());
            }
            json_array_append_new(heads, o);
        } else if (sealed) {
            fprintf(out, "%s block %s sha256 %s (sealed %s, %s rows, log id %s)\n", name,
                    PQgetvalue(result, i, 1), PQgetvalue(result, i, 3), PQgetvalue(result, i, 4),
                    PQgetvalue(result, i, 5), PQgetvalue(result, i, 2));
        } else {
            fprintf(out, "%s: nothing sealed yet\n", name);
        }
    }
    PQclear(result);
    if (json) {
        json_out(out, heads);
    }
    return 0;
}

/* ---- export ------------------------------------------------------------------------- */

/* json_text - value as a JSON string: quotes, backslashes and control characters
 * escaped, UTF-8 as it is (PostgreSQL text is valid UTF-8). */
static void json_text(FILE *out, const char *value)
{
    putc_unlocked('"', out);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            putc_unlocked('\\', out);
            putc_unlocked(*p, out);
        } else if (*p < 0x20) {
            fprintf(out, "\\u%04x", *p);
        } else {
            putc_unlocked(*p, out);
        }
    }
    putc_unlocked('"', out);
}

/* row_write - one {"row": {...}} line: written directly, not through jansson, which
 * took most of an export's time (a million rows each build and sort an object). The
 * stream is this thread's alone: unlocked stdio. */
static void row_write(FILE *out, const char *const value[SEAL_FIELDS])
{
    fputs_unlocked("{\"row\":{", out);
    for (int f = 0; f < SEAL_FIELDS; f++) {
        if (f)
            putc_unlocked(',', out);
        putc_unlocked('"', out);
        fputs_unlocked(seal_field_names[f], out);
        fputs_unlocked("\":", out);
        if (value[f] == NULL)
            fputs_unlocked("null", out);
        else if (field_integer[f])
            fputs_unlocked(value[f], out); /* an integer column's text is a JSON number */
        else
            json_text(out, value[f]);
    }
    fputs_unlocked("}}\n", out);
}

static void line_write(FILE *out, const char *key, json_t *value)
{
    json_t *line = json_pack("{s:o}", key, value);
    json_dumpf(line, out, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(line);
}

static int block_line(struct crier_db *db, PGresult *blocks, int b, int64_t campaign_id, FILE *out)
{
    struct block_meta m;
    meta_from_row(blocks, b, campaign_id, &m);
    unsigned char *locator = NULL;
    size_t locator_len = 0;
    int r = stored_locator(db, campaign_id, m.seq, &locator, &locator_len);
    if (r < 0)
        return r;
    char *hex = locator ? hex_encode(locator, locator_len) : xstrdup("");
    free(locator);
    line_write(out, "block",
               json_pack("{s:I, s:i, s:I, s:I, s:I, s:s, s:s, s:s, s:s}", "seq", (json_int_t)m.seq,
                         "version", SEAL_VERSION, "lo_id", (json_int_t)m.lo, "hi_id",
                         (json_int_t)m.hi, "rows", (json_int_t)m.rows, "prev_sha256", m.prev,
                         "sha256", m.sha, "sealed_at", PQgetvalue(blocks, b, 6), "locator", hex));
    free(hex);
    return 0;
}

/* A campaign's blocks in order with when each was sealed ($1 its id). */
static const char export_blocks_sql[] =
    "SELECT seq, lo_id, hi_id, rows, prev_sha256, sha256,"
    " to_char(sealed_at AT TIME ZONE 'UTC', " DB_TIME_US ")"
    " FROM crier.audit_block WHERE campaign_id = $1 ORDER BY seq";

static int export_campaign(struct crier_db *db, int64_t campaign_id, const char *name, FILE *out,
                           long *ret_rows)
{
    const char *params[] = {DB_NUM(campaign_id)};
    PGresult *blocks = NULL;
    int r = db_query(db, export_blocks_sql, 1, params, &blocks);
    if (r < 0)
        return r;
    json_t *fields = json_array();
    for (int f = 0; f < SEAL_FIELDS; f++)
        json_array_append_new(fields, json_string(seal_field_names[f]));
    line_write(out, "campaign",
               json_pack("{s:s, s:I, s:i, s:o}", "name", name, "id", (json_int_t)campaign_id,
                         "encoding", SEAL_VERSION, "fields", fields));
    int nblocks = PQntuples(blocks), b = 0;
    long rows = 0, unsealed = 0;
    r = campaign_rows_open(db, "export_rows", params);
    PGresult *result = NULL;
    while (r == 0) {
        r = db_query(db, "FETCH " FETCH_ROWS " FROM export_rows", 0, NULL, &result);
        if (r < 0)
            break;
        int n = PQntuples(result);
        if (n == 0) {
            PQclear(result);
            break;
        }
        for (int row = 0; row < n && r == 0; row++) {
            int64_t row_id = strtoll(PQgetvalue(result, row, FIELD_ID), NULL, 10);
            while (r == 0 && b < nblocks && row_id > strtoll(PQgetvalue(blocks, b, 2), NULL, 10))
                r = block_line(db, blocks, b++, campaign_id, out);
            const char *value[SEAL_FIELDS];
            struct row_times times;
            if (r == 0)
                r = row_read(db, result, row, value, &times);
            if (r < 0)
                break;
            row_write(out, value);
            rows++;
            if (b >= nblocks)
                unsealed++;
        }
        progress_add(&bar, n);
        PQclear(result);
        result = NULL;
    }
    while (r == 0 && b < nblocks)
        r = block_line(db, blocks, b++, campaign_id, out);
    if (r == 0)
        r = db_exec(db, "CLOSE export_rows", 0, NULL);
    if (r == 0)
        line_write(out, "end",
                   json_pack("{s:I, s:I, s:I, s:s?}", "rows", (json_int_t)rows, "blocks",
                             (json_int_t)nblocks, "unsealed_rows", (json_int_t)unsealed,
                             "head_sha256", nblocks ? PQgetvalue(blocks, nblocks - 1, 5) : NULL));
    PQclear(blocks);
    *ret_rows += rows;
    return r;
}

int seal_export(struct crier_db *db, const char *campaign, FILE *out, long *ret_rows)
{
    int r = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (r < 0)
        return r;
    const char *params[] = {campaign};
    PGresult *campaigns = NULL;
    r = db_query(db, campaigns_sql, 1, params, &campaigns);
    if (r == 0 && campaign && PQntuples(campaigns) == 0)
        r = -ENOENT;
    long rows = 0;
    progress_start(&bar, progress_wanted, "audit export");
    for (int i = 0; r == 0 && i < PQntuples(campaigns); i++)
        r = export_campaign(db, strtoll(PQgetvalue(campaigns, i, 0), NULL, 10),
                            PQgetvalue(campaigns, i, 1), out, &rows);
    progress_end(&bar);
    PQclear(campaigns);
    db_rollback(db);
    if (r == 0 && ret_rows)
        *ret_rows = rows;
    return r;
}

/* ---- verifying an export ------------------------------------------------------------ */

static bool meta_from_json(json_t *block, int64_t campaign_id, struct block_meta *m,
                           const char **ret_locator)
{
    json_int_t seq, lo, hi, rows;
    const char *prev, *sha, *locator = NULL;
    if (json_unpack(block, "{s:I, s:I, s:I, s:I, s:s, s:s, s?s}", "seq", &seq, "lo_id", &lo,
                    "hi_id", &hi, "rows", &rows, "prev_sha256", &prev, "sha256", &sha, "locator",
                    &locator) != 0 ||
        strlen(prev) != 64 || strlen(sha) != 64)
        return false;
    m->campaign_id = campaign_id;
    m->seq = (long)seq;
    m->lo = lo;
    m->hi = hi;
    m->rows = (long)rows;
    memcpy(m->prev, prev, 65);
    memcpy(m->sha, sha, 65);
    *ret_locator = locator;
    return true;
}

/* What seal_verify_file knows as it reads an export, line by line. */
struct file_verify {
    const char *path, *expect_head;
    bool json;
    FILE *out;
    json_t *results; /* with json: one object per campaign */
    long line_no, campaigns;
    bool in_campaign, broken, expected_seen;
    struct chain c;
    char name[256];
    int64_t last_row_id;
};

/* file_campaign - a campaign line: a chain begins. */
static int file_campaign(struct file_verify *f, json_t *value, char *err, size_t err_size)
{
    json_int_t id;
    const char *n;
    if (f->in_campaign || json_unpack(value, "{s:s, s:I}", "name", &n, "id", &id) != 0) {
        snprintf(err, err_size, "%s:%ld: unexpected campaign line", f->path, f->line_no);
        return -EINVAL;
    }
    snprintf(f->name, sizeof(f->name), "%s", n);
    chain_init(&f->c, id, f->name);
    f->in_campaign = true;
    f->last_row_id = 0;
    f->campaigns++;
    return 0;
}

/* file_row - a log row line: its fields as encoding 1 hashes them, into the open block. */
static int file_row(struct file_verify *f, json_t *value, char *err, size_t err_size)
{
    const char *v[SEAL_FIELDS];
    char numbers[SEAL_FIELDS][32];
    bool ok = json_is_object(value);
    for (int i = 0; ok && i < SEAL_FIELDS; i++) {
        json_t *x = json_object_get(value, seal_field_names[i]);
        if (json_is_null(x)) {
            v[i] = NULL;
        } else if (field_integer[i] && json_is_integer(x)) {
            snprintf(numbers[i], sizeof(numbers[i]), "%lld", (long long)json_integer_value(x));
            v[i] = numbers[i];
        } else if (!field_integer[i] && json_is_string(x)) {
            v[i] = json_string_value(x);
        } else {
            ok = false;
        }
    }
    if (!ok || v[FIELD_ID] == NULL) {
        snprintf(err, err_size, "%s:%ld: a row without the fields of encoding 1", f->path,
                 f->line_no);
        return -EINVAL;
    }
    int64_t row_id = strtoll(v[FIELD_ID], NULL, 10);
    if (row_id <= f->last_row_id)
        chain_break(&f->c, f->c.seq + 1, "row id %" PRId64 " out of order (after %" PRId64 ")",
                    row_id, f->last_row_id);
    f->last_row_id = row_id;
    block_hash_row(&f->c.hash, v);
    return 0;
}

/* file_block - a block line: the rows read since the last one, checked against it. */
static int file_block(struct file_verify *f, json_t *value, char *err, size_t err_size)
{
    struct block_meta m;
    const char *locator_hex = NULL;
    if (!meta_from_json(value, f->c.campaign_id, &m, &locator_hex)) {
        snprintf(err, err_size, "%s:%ld: a block line without its fields", f->path, f->line_no);
        return -EINVAL;
    }
    struct chain *c = &f->c;
    if (c->hash.rows > 0 && (c->hash.first_id <= m.lo || c->hash.last_id > m.hi))
        chain_break(c, m.seq, "block %ld holds rows outside its range", m.seq);
    unsigned char *locator = NULL;
    size_t locator_len = 0;
    if (locator_hex)
        locator = hex_decode(locator_hex, &locator_len);
    chain_close(c, &m, locator, locator_len, f->expect_head);
    free(locator);
    return 0;
}

/* file_end - an end line: the campaign's chain is reported. */
static void file_end(struct file_verify *f)
{
    f->c.unsealed = f->c.hash.rows;
    progress_clear(&bar);
    chain_report(&f->c, f->json, f->results, f->out);
    f->broken = f->broken || f->c.broken;
    f->expected_seen = f->expected_seen || f->c.expected_seen;
    block_hash_free(&f->c.hash);
    f->in_campaign = false;
}

/* file_line - one line of an export: {"campaign"|"row"|"block"|"end": ...}. */
static int file_line(struct file_verify *f, const char *line, char *err, size_t err_size)
{
    json_error_t error;
    json_t *doc = json_loads(line, 0, &error);
    const char *key = NULL;
    json_t *value = NULL;
    if (json_is_object(doc) && json_object_size(doc) == 1) {
        void *iter = json_object_iter(doc);
        key = json_object_iter_key(iter);
        value = json_object_iter_value(iter);
    }
    int r = 0;
    if (key == NULL) {
        snprintf(err, err_size, "%s:%ld: not an export line (%s)", f->path, f->line_no,
                 doc ? "expected one of campaign, row, block, end" : error.text);
        r = -EINVAL;
    } else if (strcmp(key, "campaign") == 0) {
        r = file_campaign(f, value, err, err_size);
    } else if (!f->in_campaign) {
        snprintf(err, err_size, "%s:%ld: %s line before a campaign line", f->path, f->line_no, key);
        r = -EINVAL;
    } else if (strcmp(key, "row") == 0) {
        r = file_row(f, value, err, err_size);
    } else if (strcmp(key, "block") == 0) {
        r = file_block(f, value, err, err_size);
    } else if (strcmp(key, "end") == 0) {
        file_end(f);
    } else {
        snprintf(err, err_size, "%s:%ld: unknown line '%s'", f->path, f->line_no, key);
        r = -EINVAL;
    }
    json_decref(doc);
    return r;
}

int seal_verify_file(const char *path, const char *expect_head, bool json, FILE *out, char *err,
                     size_t err_size)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -errno;
    }
    struct file_verify f = {.path = path,
                            .expect_head = expect_head,
                            .json = json,
                            .out = out,
                            .results = json ? json_array() : NULL};
    char *line = NULL;
    size_t cap = 0;
    int r = 0;
    progress_start(&bar, progress_wanted, "audit verify --file");
    while (r == 0 && getline(&line, &cap, in) > 0) {
        f.line_no++;
        progress_add(&bar, 1);
        r = file_line(&f, line, err, err_size);
    }
    free(line);
    fclose(in);
    progress_end(&bar);
    if (f.in_campaign) {
        block_hash_free(&f.c.hash);
        if (r == 0) {
            snprintf(err, err_size, "%s: ends inside campaign %s: the export is incomplete", path,
                     f.name);
            r = -EINVAL;
        }
    }
    if (r == 0 && f.campaigns == 0) {
        snprintf(err, err_size, "%s: no campaign in the file", path);
        r = -EINVAL;
    }
    if (r < 0) {
        json_decref(f.results);
        return r;
    }
    return verdict(f.broken, expect_head, f.expected_seen, json, f.results, out);
}
