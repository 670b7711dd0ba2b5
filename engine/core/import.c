/*
 * import.c - `crier campaign load`: a CSV file, a table or a query into a campaign.
 *
 * Reads rows from a source, validates each (validate.c), picks each notice's first channel
 * (policy.c) and writes recipients and notices with COPY in batches, all inside one
 * transaction that holds the campaign row locked; a first load's notices go beside the
 * recipients on a second connection, into a staging table that the transaction makes the
 * campaign's partition (struct stage). Any error before COMMIT leaves the campaign exactly
 * as it was. After the commit, the campaign's `audit find` indexes are
 * built on two connections (find_index.c): they are not needed for the rows to be loaded,
 * and outside the transaction they need not hold the rows back. A sender thread feeds the
 * recipients' COPY while rows are parsed; duplicate refs are found by the database's unique index
 * (struct dup_list), so memory does not grow with the list.
 *
 * SECURITY: row values are untrusted; they go to PostgreSQL only through COPY's escaped
 * text format, never into SQL text. --query is the operator's own SQL, run with their
 * own database role, so it can do nothing they could not do in psql.
 */
#include "crier/import.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/db.h"
#include "crier/find_index.h"
#include "crier/hold.h"
#include "crier/parallel.h"
#include "crier/strbuf.h"
#include "crier/policy.h"
#include "crier/validate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define COPY_CHUNK   (256 * 1024) /* bytes buffered before they go to the server */
#define FETCH_ROWS   "5000"
#define DIAG_REJECTS 20 /* rejected rows echoed to diag; the reject file has all */

/* ---- duplicate refs, found by the database ------------------------------------------- */

/*
 * A load keeps no set of refs in memory: at 10,000,000 rows that set was 1.6 GB. Each pass
 * writes every valid row as if no ref repeated, and the unique index on (campaign_id, ref)
 * checks it, when the campaign's fresh partition is attached (a first load) or row by row
 * (a later load). Should it find a duplicate, the database lists the rows whose ref came
 * before (in this load or an earlier one) in source order: a first load asks its own
 * unattached partition, kept behind the attach's savepoint (dups_from_partition); a later
 * load rolls back to its savepoint and reads the source again sending only (row, ref)
 * pairs to a temporary table (refs_pass). The list is spooled to a file, and the load
 * runs once more, rejecting exactly those rows. A list with a duplicate is read twice (a
 * first load) or three times (a later one) instead of once; memory stays flat in its size.
 */
struct dup_list {
    FILE *spool;         /* "row<TAB>first<TAB>earlier" lines, ascending row */
    bool known;          /* the list is computed: this is the load's last pass */
    bool have;           /* the fields below hold the next duplicate */
    unsigned long next;  /* its row (CSV line or SQL row number) */
    unsigned long first; /* the row of this load where its ref came first, or 0 */
    char earlier[48];    /* or the earlier load's source_row ("line 4") */
};

static void dup_advance(struct dup_list *d)
{
    char line[128];
    d->have = false;
    if (d->spool == NULL || fgets(line, sizeof(line), d->spool) == NULL)
        return;
    char *p = line;
    d->next = strtoul(p, &p, 10);
    d->first = strtoul(p + (*p == '\t'), &p, 10);
    p += *p == '\t';
    p[strcspn(p, "\n")] = '\0';
    snprintf(d->earlier, sizeof(d->earlier), "%s", p);
    d->have = true;
}

/* dup_reason - the rejection reason if the row numbered number repeats a ref, else NULL. */
static char *dup_reason(struct dup_list *d, const char *ref, unsigned long number, bool csv)
{
    while (d->have && d->next < number)
        dup_advance(d);
    if (!d->have || d->next != number)
        return NULL;
    char *reason = d->earlier[0] ? xasprintf("duplicate ref '%s' (first at %s of an earlier load)",
                                             ref, d->earlier)
                                 : xasprintf("duplicate ref '%s' (first at %s %lu)", ref,
                                             csv ? "line" : "row", d->first);
    dup_advance(d);
    return reason;
}

/* ---- row sources: a CSV file or a SQL cursor ------------------------------------------ */

struct source {
    /* CSV */
    struct csv_reader *csv;
    /* SQL */
    struct crier_db *db;
    PGresult *fetched;
    int fetched_row;
    /* both */
    char **columns; /* header names */
    size_t column_count;
    const char *name;                /* the file, for messages */
    const char **values;             /* current row, column_count entries, NULL = SQL NULL */
    int (*before_fetch)(void *data); /* frees the connection for FETCH */
    void *before_fetch_data;
    char where[48];       /* "line 17" or "row 17" */
    unsigned long number; /* the 17 of where */
    unsigned long row_number;
};

/* source_next - 1 with values/where set, 0 at the end, < 0 on error (err set). */
static int source_next(struct source *src, char *err, size_t err_size)
{
    if (src->csv) {
        const struct csv_record *record = NULL;
        int r = csv_reader_next(src->csv, &record, err, err_size);
        if (r <= 0)
            return r;
        for (size_t i = 0; i < src->column_count; i++)
            src->values[i] = i < record->count ? record->fields[i] : NULL;
        src->row_number++;
        src->number = record->line;
        snprintf(src->where, sizeof(src->where), "line %lu", record->line);
        if (record->count != src->column_count) {
            snprintf(err, err_size, "%s:%lu: the record has %zu fields, the header %zu", src->name,
                     record->line, record->count, src->column_count);
            return -EBADMSG;
        }
        return 1;
    }
    if (src->fetched == NULL || src->fetched_row >= PQntuples(src->fetched)) {
        PQclear(src->fetched);
        src->fetched = NULL;
        int r = src->before_fetch ? src->before_fetch(src->before_fetch_data) : 0;
        if (r < 0) {
            snprintf(err, err_size, "%s", src->db->error);
            return r;
        }
        r = db_query(src->db, "FETCH FORWARD " FETCH_ROWS " FROM crier_load_source", 0, NULL,
                     &src->fetched);
        if (r < 0) {
            snprintf(err, err_size, "reading the source: %s", src->db->error);
            return r;
        }
        src->fetched_row = 0;
        if (PQntuples(src->fetched) == 0)
            return 0;
    }
    for (size_t i = 0; i < src->column_count; i++)
        src->values[i] = PQgetisnull(src->fetched, src->fetched_row, (int)i)
                             ? NULL
                             : PQgetvalue(src->fetched, src->fetched_row, (int)i);
    src->fetched_row++;
    src->row_number++;
    src->number = src->row_number;
    snprintf(src->where, sizeof(src->where), "row %lu", src->row_number);
    return 1;
}

static void source_set_columns(struct source *src, size_t count)
{
    src->column_count = count;
    src->columns = xcalloc(count + 1, sizeof(char *));
    src->values = xcalloc(count + 1, sizeof(char *));
}

static int source_open_csv(struct source *src, const char *path, char *err, size_t err_size)
{
    src->name = path;
    int r = csv_reader_open(path, &src->csv, err, err_size);
    if (r < 0)
        return r;
    const struct csv_record *header = NULL;
    r = csv_reader_next(src->csv, &header, err, err_size);
    if (r < 0)
        return r;
    if (r == 0) {
        snprintf(err, err_size, "%s: empty file (a header line is required)", path);
        return -EINVAL;
    }
    source_set_columns(src, header->count);
    for (size_t i = 0; i < header->count; i++)
        src->columns[i] = xstrdup(header->fields[i]);
    return 0;
}

/* source_open_sql - DECLARE a cursor in the load's transaction: a consistent snapshot.
 * Scrollable, so that a second pass (duplicate refs) reads the very same rows again. */
static int source_open_sql(struct source *src, struct crier_db *db, const char *table,
                           const char *query, char *err, size_t err_size)
{
    char *sql;
    if (table) {
        const char *dot = strchr(table, '.');
        char *schema = dot ? xstrndup(table, (size_t)(dot - table)) : NULL;
        const char *name = dot ? dot + 1 : table;
        char *schema_quoted = schema ? PQescapeIdentifier(db->conn, schema, strlen(schema)) : NULL;
        char *name_quoted = PQescapeIdentifier(db->conn, name, strlen(name));
        free(schema);
        if (name_quoted == NULL || (dot && schema_quoted == NULL)) {
            snprintf(err, err_size, "invalid table name '%s'", table);
            PQfreemem(schema_quoted);
            PQfreemem(name_quoted);
            return -EINVAL;
        }
        sql = xasprintf("DECLARE crier_load_source SCROLL CURSOR FOR SELECT * FROM %s%s%s",
                        schema_quoted ? schema_quoted : "", schema_quoted ? "." : "", name_quoted);
        PQfreemem(schema_quoted);
        PQfreemem(name_quoted);
    } else {
        sql = xasprintf("DECLARE crier_load_source SCROLL CURSOR FOR %s", query);
    }
    int r = db_exec(db, sql, 0, NULL);
    free(sql);
    if (r < 0) {
        snprintf(err, err_size, "%s: %s", table ? table : "--query", db->error);
        return -EINVAL;
    }
    src->db = db;
    /* the first FETCH tells the column names, even when it returns no row */
    r = db_query(db, "FETCH FORWARD " FETCH_ROWS " FROM crier_load_source", 0, NULL, &src->fetched);
    if (r < 0) {
        snprintf(err, err_size, "reading the source: %s", db->error);
        return r;
    }
    source_set_columns(src, (size_t)PQnfields(src->fetched));
    for (size_t i = 0; i < src->column_count; i++)
        src->columns[i] = xstrdup(PQfname(src->fetched, (int)i));
    return 0;
}

/*
 * source_rewind - back before the first data row, for the load's next pass. The SQL cursor
 * keeps the snapshot it was declared with; the CSV file is opened again and must still
 * have the same header (import_load compares its hash once the load is done).
 */
static int source_rewind(struct source *src, char *err, size_t err_size)
{
    src->row_number = 0;
    if (src->csv == NULL) {
        PQclear(src->fetched);
        src->fetched = NULL;
        int r = db_exec(src->db, "MOVE ABSOLUTE 0 IN crier_load_source", 0, NULL);
        if (r < 0)
            snprintf(err, err_size, "reading the source: %s", src->db->error);
        return r;
    }
    src->csv = csv_reader_free(src->csv);
    int r = csv_reader_open(src->name, &src->csv, err, err_size);
    const struct csv_record *header = NULL;
    if (r == 0)
        r = csv_reader_next(src->csv, &header, err, err_size);
    if (r < 0)
        return r;
    bool same = r > 0 && header->count == src->column_count;
    for (size_t i = 0; same && i < header->count; i++)
        same = strcmp(header->fields[i], src->columns[i]) == 0;
    if (!same) {
        snprintf(err, err_size, "%s: the file changed while it was loaded", src->name);
        return -EBADMSG;
    }
    return 0;
}

static void source_close(struct source *src)
{
    csv_reader_free(src->csv);
    PQclear(src->fetched);
    strv_free(src->columns);
    free(src->values);
    memset(src, 0, sizeof(*src));
}

/* ---- COPY text format ------------------------------------------------------------------ */

/* copy_value - one column in COPY's text format: NULL is \N, specials are escaped. The
 * runs between specials are found with strcspn (vectorised in glibc): the byte-by-byte
 * loop this replaces, with its strlen of each run, was a quarter of the loader's CPU. */
static void copy_value(struct strbuf *b, const char *value, bool last)
{
    if (value == NULL) {
        strbuf_add(b, "\\N", 2);
    } else {
        for (;;) {
            size_t n = strcspn(value, "\\\n\r\t");
            strbuf_add(b, value, n);
            value += n;
            if (*value == '\0')
                break;
            char escape[2] = {'\\', *value == '\n'   ? 'n'
                                    : *value == '\r' ? 'r'
                                    : *value == '\t' ? 't'
                                                     : '\\'};
            strbuf_add(b, escape, 2);
            value++;
        }
    }
    strbuf_add(b, last ? "\n" : "\t", 1);
}

/*
 * copy_send - stream what is buffered into an open COPY (opening it first). The server
 * parses and indexes while the loader reads on: that overlap is most of the load's speed.
 */
static int copy_send(struct crier_db *db, const char *sql, bool *open, struct strbuf *b)
{
    if (b->len == 0)
        return 0;
    if (!*open) {
        PGresult *result = PQexec(db->conn, sql);
        int r = db_check_result(db, result);
        PQclear(result);
        if (r < 0)
            return r;
        *open = true;
    }
    if (PQputCopyData(db->conn, b->data, (int)b->len) != 1) {
        snprintf(db->error, sizeof(db->error), "COPY failed: %s", PQerrorMessage(db->conn));
        return -EIO;
    }
    b->len = 0;
    return 0;
}

/* ---- the recipients' COPY on a thread of its own --------------------------------------- */

/*
 * The loader parses and validates while a second thread feeds the recipients' COPY. With
 * one thread, PQputCopyData blocked whenever the socket was full and the server then
 * waited while the next chunk was parsed: the phase took about the sum of both sides'
 * time rather than the larger. SENDER_SLOTS chunks in flight let each run at its own pace.
 * The sender owns the connection from the chunk that starts it until sender_stop()
 * returns; meanwhile the loader does not touch it (the CSV loop never does; a SQL source
 * stops the sender before each FETCH, end_recipients).
 */
#define SENDER_SLOTS 8 /* of COPY_CHUNK bytes: 2 MiB in flight at most */

struct sender {
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct strbuf slots[SENDER_SLOTS];
    size_t head, count; /* the filled slots are head .. head + count - 1 (mod SENDER_SLOTS) */
    bool stop;
    int result; /* the first error (db->error says what), or 0 */
    struct crier_db *db;
    const char *sql;
    bool *open;
};

static void *sender_main(void *data)
{
    struct sender *s = data;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->count == 0 && !s->stop)
            pthread_cond_wait(&s->changed, &s->lock);
        if (s->count == 0)
            break;
        struct strbuf *b = &s->slots[s->head];
        bool failed = s->result < 0;
        pthread_mutex_unlock(&s->lock);
        int r = failed ? 0 : copy_send(s->db, s->sql, s->open, b);
        b->len = 0;
        pthread_mutex_lock(&s->lock);
        if (r < 0)
            s->result = r;
        s->head = (s->head + 1) % SENDER_SLOTS;
        s->count--;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* sender_push - hand b's bytes to the sender, starting it; b gets an empty buffer back. */
static int sender_push(struct sender *s, struct crier_db *db, const char *sql, bool *open,
                       struct strbuf *b)
{
    if (!s->running) {
        s->db = db;
        s->sql = sql;
        s->open = open;
        s->stop = false;
        s->result = 0;
        s->head = s->count = 0;
        if (pthread_create(&s->thread, NULL, sender_main, s) != 0)
            return copy_send(db, sql, open, b); /* no thread: send it from this one */
        s->running = true;
    }
    pthread_mutex_lock(&s->lock);
    while (s->count == SENDER_SLOTS && s->result == 0)
        pthread_cond_wait(&s->changed, &s->lock);
    int r = s->result;
    if (r == 0) {
        struct strbuf *slot = &s->slots[(s->head + s->count) % SENDER_SLOTS];
        struct strbuf empty = *slot;
        *slot = *b;
        *b = empty;
        b->len = 0;
        if (b->data)
            b->data[0] = '\0'; /* strbuf keeps its NUL */
        s->count++;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* sender_stop - wait until all that was handed over is sent and the thread has ended. */
static int sender_stop(struct sender *s)
{
    if (!s->running)
        return 0;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->running = false;
    return s->result;
}

static void sender_init(struct sender *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
}

static void sender_free(struct sender *s)
{
    sender_stop(s);
    for (size_t i = 0; i < SENDER_SLOTS; i++)
        free(s->slots[i].data);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
}

/* copy_end - finish an open COPY and collect its result. */
static int copy_end(struct crier_db *db, bool *open)
{
    if (!*open)
        return 0;
    *open = false;
    if (PQputCopyEnd(db->conn, NULL) != 1) {
        snprintf(db->error, sizeof(db->error), "COPY failed: %s", PQerrorMessage(db->conn));
        return -EIO;
    }
    PGresult *result = PQgetResult(db->conn);
    int r = db_check_result(db, result);
    PQclear(result);
    while ((result = PQgetResult(db->conn)) != NULL)
        PQclear(result);
    return r;
}

/* random_hex - size-1 hex digits of kernel randomness, NUL-terminated. Draws from a pool
 * refilled by getrandom() so that a million tokens cost a few hundred syscalls; the load
 * is single-threaded. */
static void random_hex(char *out, size_t size)
{
    static unsigned char pool[4096];
    static size_t pool_left;
    static const char hex[] = "0123456789abcdef";
    size_t n = (size - 1) / 2;
    for (size_t i = 0; i < n; i++) {
        if (pool_left == 0) {
            size_t got = 0;
            while (got < sizeof(pool)) {
                ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0)
                    abort(); /* no kernel randomness: nothing safe to do */
                got += (size_t)r;
            }
            pool_left = sizeof(pool);
        }
        unsigned char byte = pool[--pool_left];
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 0xf];
    }
    out[2 * n] = '\0';
}

/* ---- the file's SHA-256, on a thread of its own ------------------------------------------ */

/* The load records the CSV file's hash. Read before the load began, the whole file was
 * read and hashed while nothing else happened. It is hashed once the first pass has read
 * the file (from the page cache, then), while the server stores the notices and builds
 * the indexes and the loader would otherwise wait; only the commit needs it. */
struct hasher {
    pthread_t thread;
    bool running;
    const char *path;
    char hex[65];
    int result;
};

static void *hasher_main(void *data)
{
    struct hasher *h = data;
    h->result = sha256_file_hex(h->path, h->hex);
    return NULL;
}

static void hasher_start(struct hasher *h, const char *path)
{
    h->path = path;
    h->running = pthread_create(&h->thread, NULL, hasher_main, h) == 0;
    if (!h->running)
        hasher_main(h);
}

/* hasher_wait - 0 with hex set, or -errno. */
static int hasher_wait(struct hasher *h)
{
    if (h->running)
        pthread_join(h->thread, NULL);
    h->running = false;
    return h->result;
}

/* ---- the campaign's jurisdictions (020_load.sql) ------------------------------ */

/*
 * `campaign start` checks the templates against the content rules of every jurisdiction
 * the campaign's people live in. It read every recipient for them (12.6 s at 10,000,000);
 * the loader sees every row anyway, so it keeps the distinct (country, region) pairs of
 * the rows it writes, a few dozen in a real list, and the database turns them into the
 * campaign's jurisdictions in the load's transaction (crier.jurisdiction_of: one
 * definition, the server's upper() and btrim()). Pairs that cannot name a jurisdiction
 * (no region, or an ASCII country other than US, PR, GU and VI) are not kept, and a
 * territory's region does not matter. A list with more than JURIS_MAX distinct pairs
 * (free text in the region column) has them read from its stored rows instead, once.
 */
#define JURIS_MAX   1024
#define JURIS_SLOTS 2048 /* a power of two, twice JURIS_MAX */

struct juris_set {
    char *country[JURIS_SLOTS]; /* NULL: a free slot */
    char *region[JURIS_SLOTS];
    size_t count;
    bool overflow;
};

static bool juris_possible(const char *country, const char **region)
{
    if (*region == NULL)
        return false;
    for (const char *p = country; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return true; /* the server's upper() decides */
    if (strcmp(country, "US") == 0)
        return true;
    *region = "";
    return strcmp(country, "PR") == 0 || strcmp(country, "GU") == 0 || strcmp(country, "VI") == 0;
}

/* juris_add - note a written row's country (as stored) and region. */
static void juris_add(struct juris_set *j, const char *country, const char *region)
{
    if (j->overflow || !juris_possible(country, &region))
        return;
    uint32_t h = 2166136261u; /* FNV-1a over both, with the NUL between them */
    for (const char *p = country;; p++) {
        h = (h ^ (unsigned char)*p) * 16777619u;
        if (*p == '\0')
            break;
    }
    for (const char *p = region; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    size_t i = h & (JURIS_SLOTS - 1);
    for (; j->country[i]; i = (i + 1) & (JURIS_SLOTS - 1))
        if (strcmp(j->country[i], country) == 0 && strcmp(j->region[i], region) == 0)
            return;
    if (j->count == JURIS_MAX) {
        j->overflow = true;
        return;
    }
    j->country[i] = xstrdup(country);
    j->region[i] = xstrdup(region);
    j->count++;
}

static void juris_clear(struct juris_set *j)
{
    for (size_t i = 0; i < JURIS_SLOTS; i++) {
        free(j->country[i]);
        free(j->region[i]);
    }
    memset(j, 0, sizeof(*j));
}

/* juris_store - the load's jurisdictions into the campaign's set, in its transaction. */
static int juris_store(struct juris_set *j, struct crier_db *db, const char *campaign_id,
                       const char *load_id)
{
    if (j->overflow) {
        const char *params[] = {campaign_id, load_id};
        return db_exec(db, "SELECT crier.campaign_jurisdiction_scan($1, $2)", 2, params);
    }
    if (j->count == 0)
        return 0;
    const char **countries = xcalloc(j->count, sizeof(char *));
    const char **regions = xcalloc(j->count, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < JURIS_SLOTS; i++) {
        if (j->country[i]) {
            countries[n] = j->country[i];
            regions[n++] = j->region[i];
        }
    }
    char *country_array = db_array_of(countries, n);
    char *region_array = db_array_of(regions, n);
    const char *params[] = {campaign_id, country_array, region_array};
    int r = db_exec(db, "SELECT crier.campaign_jurisdiction_add($1, $2::text[], $3::text[])", 3,
                    params);
    free(country_array);
    free(region_array);
    free(countries);
    free(regions);
    return r;
}

/* ---- the load ------------------------------------------------------------------------- */

/*
 * A first load's notices go to the server while the recipients' COPY streams, on a second
 * connection, into a staging table made and committed there (019_find_local.sql): the
 * load's own partition is invisible to any other transaction. The load's transaction then
 * makes the staging table the campaign's notice partition and attaches it. A staging table
 * whose load failed is in no campaign; the next load of the campaign drops it.
 */
struct stage {
    struct crier_db *db; /* NULL: the notices are spooled (a later load, a SQL source) */
    struct sender sender;
    bool open;     /* its COPY is in progress */
    char name[64]; /* crier.notice_stage_cID_LOAD_PASS, recipient_stage_cID_LOAD_PASS */
    int passes;
    char *copy; /* the COPY into it */
};

struct load {
    struct crier_db *db;
    const struct crier_config *config;
    const struct import_options *options;
    struct campaign *campaign;
    size_t policy_count;
    struct source src;
    int field_column[FIELD_COUNT]; /* source column of each field, -1 if absent */
    bool *is_field;                /* per source column: a standard field, not a variable */
    struct dup_list dups;
    bool refs_only; /* the duplicate pass: (row, ref) of valid rows into crier_load_ref */
    struct strbuf recipients, notices;
    struct strbuf vars;    /* the current row's variables as JSON */
    bool recipients_open;  /* the recipients' COPY is in progress */
    struct sender sender;  /* feeds the recipients' COPY */
    struct hasher *hash;   /* the CSV file's SHA-256, started once the first pass has read it */
    bool fresh_partitions; /* this load created the campaign's partitions */
    char *copy_recipients; /* copy_recipients_sql for this campaign */
    char *copy_notices;
    FILE *notice_spool;     /* notice rows waiting for the recipients' COPY to end */
    struct stage stage;     /* or, in a first load, COPYed beside it on a second connection */
    struct stage rstage;    /* a first CSV load's recipients, on a third (NULL db: on db) */
    struct juris_set juris; /* the written rows' (country, region) pairs */
    long next_seq;
    long first_seq; /* next_seq when the load began, for a second pass */
    char campaign_id[32], load_id[32];
    FILE *rejects;
    char *reject_tmp; /* the reject file while it is written */
    FILE *diag;
    FILE *diag_buf; /* rejected rows for diag, held until the pass is known to be the last */
    char *diag_text;
    size_t diag_size;
    struct import_result result;
    double last_progress;
};

/* The COPYs go straight into the campaign's partitions (crier.recipient_cID, notice_cID),
 * or into a first load's staging tables. */
static const char copy_recipients_sql[] =
    "COPY crier.%s (campaign_id, seq, load_id, source_row, ref, name, email, fax,"
    " address1, address2, city, region, postal_code, country, mailable, vars, notes)"
    " FROM STDIN%s";
static const char copy_notices_sql[] =
    "COPY crier.%s (id, campaign_id, recipient_seq, state, channel, channel_index,"
    " reasons, token, region) FROM STDIN%s";

/* rstage_start - the recipients' staging table of this pass, on a third connection (opened
 * on the first pass); without it the recipients go to the load's own partition. */
static void rstage_start(struct load *l, const char *pass)
{
    struct stage *st = &l->rstage;
    char err[256];
    if (st->db == NULL &&
        db_open(l->config->conninfo, "crier load recipients", &st->db, err, sizeof(err)) < 0)
        return;
    PGresult *result = NULL;
    const char *create[] = {l->campaign_id, l->load_id, pass};
    int r = db_begin(st->db);
    if (r == 0)
        r = db_query(st->db, "SELECT crier.recipient_stage_create($1, $2, $3)", 3, create, &result);
    if (r < 0) {
        st->db = db_close(st->db);
        return;
    }
    snprintf(st->name, sizeof(st->name), "%s", PQgetvalue(result, 0, 0));
    PQclear(result);
    free(st->copy);
    st->copy = xasprintf(copy_recipients_sql, st->name, " (FREEZE)");
}

/* stage_start - the staging table of this pass, on the second connection (opened on the
 * first pass); staging tables of the campaign's failed loads, or of this load's failed
 * pass, are dropped first. Without the second connection the notices are spooled. */
static int stage_start(struct load *l)
{
    struct stage *st = &l->stage;
    const char *params[] = {l->campaign_id};
    int r = db_exec(l->db, "SELECT crier.notice_stage_sweep($1)", 1, params);
    if (r < 0)
        return r;
    char err[256];
    if (st->db == NULL &&
        db_open(l->config->conninfo, "crier load notices", &st->db, err, sizeof(err)) < 0)
        return 0;
    PGresult *result = NULL;
    char pass[16];
    snprintf(pass, sizeof(pass), "%d", ++st->passes);
    const char *create[] = {l->campaign_id, l->load_id, pass};
    r = db_begin(st->db);
    if (r == 0)
        r = db_query(st->db, "SELECT crier.notice_stage_create($1, $2, $3)", 3, create, &result);
    if (r < 0) {
        st->db = db_close(st->db); /* spooled, then */
        l->rstage.db = db_close(l->rstage.db);
        return 0;
    }
    snprintf(st->name, sizeof(st->name), "%s", PQgetvalue(result, 0, 0));
    PQclear(result);
    free(st->copy);
    st->copy = xasprintf("COPY crier.%s (id, campaign_id, recipient_seq, state, channel,"
                         " channel_index, reasons, token, region) FROM STDIN (FREEZE)",
                         st->name);
    rstage_start(l, pass);
    return 0;
}

/* stage_error - a staging connection's error, where the load reports its own. */
static int stage_error_of(struct load *l, const struct crier_db *db, int r)
{
    snprintf(l->db->error, sizeof(l->db->error), "%s", db->error);
    snprintf(l->db->sqlstate, sizeof(l->db->sqlstate), "%s", db->sqlstate);
    return r;
}

static int stage_error(struct load *l, int r)
{
    return stage_error_of(l, l->stage.db, r);
}

/* stage_commit - the rows still buffered (left: notices or recipients) to a staging table,
 * its COPY ended and committed on its own connection; an error is the load's. */
static int stage_commit(struct load *l, struct stage *st, struct strbuf *left)
{
    int r = sender_stop(&st->sender);
    if (r == 0)
        r = copy_send(st->db, st->copy, &st->open, left);
    if (r == 0)
        r = copy_end(st->db, &st->open);
    if (r == 0)
        r = db_commit(st->db);
    return r < 0 ? stage_error_of(l, st->db, r) : 0;
}

/* stage_end - every notice is in the staging table: commit it there, and make it the
 * campaign's notice partition in the load's transaction. */
static int stage_end(struct load *l)
{
    struct stage *st = &l->stage;
    int r = stage_commit(l, st, &l->notices);
    if (r < 0)
        return r;
    if (l->rstage.db) /* adopted with the recipients, indexed (partitions_attach) */
        return 0;
    const char *params[] = {l->campaign_id, st->name};
    return db_exec(l->db, "SELECT crier.notice_stage_adopt($1, $2)", 2, params);
}

static void stage_free(struct stage *st)
{
    sender_free(&st->sender);
    if (st->open) {
        PQputCopyEnd(st->db->conn, "load failed");
        PGresult *pending;
        while ((pending = PQgetResult(st->db->conn)) != NULL)
            PQclear(pending);
    }
    db_close(st->db); /* an open transaction is rolled back */
    free(st->copy);
}

/* notices_flush - the buffered notice rows to the staging table's COPY, or to the spool. */
static int spool_notices(struct load *l);
static int notices_flush(struct load *l)
{
    struct stage *st = &l->stage;
    if (st->db == NULL)
        return spool_notices(l);
    int r = sender_push(&st->sender, st->db, st->copy, &st->open, &l->notices);
    return r < 0 ? stage_error(l, r) : 0;
}

/*
 * partitions_prepare - a campaign's first load creates its two partitions, unattached and
 * without indexes; partitions_attach() attaches them after the COPYs, and PostgreSQL then
 * builds their indexes in one sorted pass each, several times faster than row by row.
 * The CHECK lets ATTACH skip its validation scan. A failed load rolls all of it back.
 */
static int partitions_prepare(struct load *l)
{
    /* crier.partitions_create (005_roles.sql, 010_load.sql) creates them as the schema owner, so
     * that a member of crier_operator can load a new campaign, and says whether it did */
    const char *params[] = {l->campaign_id};
    PGresult *result = NULL;
    int r = db_query(l->db, "SELECT crier.partitions_create($1)", 1, params, &result);
    if (r < 0)
        return r;
    l->fresh_partitions = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    /* Rows COPYed FREEZE into a table this subtransaction created are written frozen and
     * their pages all-visible: nothing for the attach's scans to check against this
     * transaction, nor for vacuum to rewrite later. PostgreSQL allows it only where no
     * other transaction can see the table, and not beside an open cursor (a SQL source). */
    const char *freeze = l->fresh_partitions && l->src.csv ? " (FREEZE)" : "";
    free(l->copy_recipients);
    free(l->copy_notices);
    char part[48];
    snprintf(part, sizeof(part), "recipient_c%s", l->campaign_id);
    l->copy_recipients = xasprintf(copy_recipients_sql, part, freeze);
    snprintf(part, sizeof(part), "notice_c%s", l->campaign_id);
    l->copy_notices = xasprintf(copy_notices_sql, part, freeze);
    return l->fresh_partitions && l->src.csv ? stage_start(l) : 0;
}

static int dups_from_partition(struct load *l, bool staged);

/*
 * ---- a first load's indexes, built on its staging tables on two connections ----
 * Once both staging tables are committed, the indexes the load's commit needs (the
 * recipients' key and unique ref, the notices' key and claim index;
 * crier.load_stage_indexes) are built on the two staging connections side by side, each
 * taking the next from one list, largest first (parallel.h, as find_index.c's builds). The
 * load's transaction then adopts the tables with their indexes, and ATTACH builds nothing;
 * before, ATTACH built the four one after the other in the load's one backend. The five `audit
 * find` indexes could be built here too, but then the commit waits for them: measured, that was no
 * faster to return and a quarter slower to commit than building them after the commit
 * (LOAD_STAGE_FIND).
 */
#ifndef LOAD_STAGE_FIND   /* -D1 for a benchmark build: the find indexes here too */
#define LOAD_STAGE_FIND 0 /* after the commit (docs/benchmarks.md, "Fifth round") */
#endif

/* stage_index_one - one index of a staging table (a row of stage, suffix, is_unique,
 * definition) on db; counts 1 for an `audit find` index (the recipients' non-unique ones). */
static int stage_index_one(struct crier_db *db, PGresult *list, int row, void *data)
{
    const char *params[] = {PQgetvalue(list, row, 0), PQgetvalue(list, row, 1),
                            PQgetvalue(list, row, 2), PQgetvalue(list, row, 3)};
    int r = db_exec(db, "SELECT crier.load_stage_index($1, $2, $3, $4)", 4, params);
    bool find = strncmp(params[0], "recipient", 9) == 0 && strcmp(params[2], "f") == 0;
    return r < 0 ? r : find;
}

/* stage_indexes - every index of both staging tables; a duplicate ref fails the unique
 * build with -EEXIST (23505), the rows still in the committed staging table. */
static int stage_indexes(struct load *l)
{
    const char *params[] = {l->rstage.name, l->stage.name, LOAD_STAGE_FIND ? "t" : "f"};
    PGresult *list = NULL;
    int r = db_query(l->db,
                     "SELECT * FROM crier.load_stage_indexes($1, $2)"
                     " WHERE $3::boolean OR is_unique OR stage = $2",
                     3, params, &list);
    if (r < 0)
        return r;
    struct crier_db *const dbs[] = {l->rstage.db, l->stage.db};
    struct crier_db *failed = NULL;
    r = parallel_rows(dbs, 2, list, stage_index_one, NULL, &l->result.find_built, &failed);
    PQclear(list);
    return r < 0 ? stage_error_of(l, failed, r) : 0;
}

/* stage_adopt - both staging tables, indexed, become the campaign's partitions; a
 * duplicate ref met by the indexes is listed from the staging table (dups_from_partition). */
static int stage_adopt(struct load *l)
{
    int r = stage_indexes(l);
    if (r == -EEXIST && strcmp(l->db->sqlstate, "23505") == 0 && !l->dups.known)
        return dups_from_partition(l, true);
    if (r < 0)
        return r;
    const char *params[] = {l->campaign_id, l->rstage.name, l->stage.name};
    return db_exec(l->db, "SELECT crier.load_stage_adopt($1, $2, $3)", 3, params);
}

/* partitions_attach - a fresh partition is attached when its rows are in; PostgreSQL then
 * builds its indexes, and checks the refs' uniqueness, in one sorted pass per index. The
 * sorts get room for a million rows in memory rather than spilling to disk, for this
 * transaction only. A first pass attaches behind a savepoint: should a ref repeat, its
 * rows stay to be asked which (dups_from_partition). */
static int partitions_attach(struct load *l)
{
    if (!l->fresh_partitions)
        return 0;
    const char *params[] = {l->campaign_id};
    int r = l->rstage.db ? stage_adopt(l) : 0;
    if (r < 0)
        return r;
    r = db_exec(l->db, "SET LOCAL maintenance_work_mem = '256MB'", 0, NULL);
    if (r == 0 && !l->dups.known)
        r = db_exec(l->db, "SAVEPOINT crier_attach", 0, NULL);
    if (r == 0)
        r = db_exec(l->db, "SELECT crier.partitions_attach($1)", 1, params);
    if (r == -EEXIST && !l->dups.known)
        return dups_from_partition(l, false);
    if (r == 0 && !l->dups.known)
        r = db_exec(l->db, "RELEASE SAVEPOINT crier_attach", 0, NULL);
    return r;
}

/* notice_tally - the campaign's notice tallies (006_scale.sql), which the COPYs into the
 * partition by name did not update. */
static int notice_tally(struct load *l)
{
    const char *params[] = {l->campaign_id};
    return db_exec(l->db, "SELECT crier.notice_tally_recount($1)", 1, params);
}

/* map_columns - find each standard field's source column (import.columns may rename). */
static int map_columns(struct load *l, char *err, size_t err_size)
{
    l->is_field = xcalloc(l->src.column_count + 1, sizeof(bool));
    for (size_t c = 0; c < l->src.column_count; c++) {
        if (str_empty(l->src.columns[c])) {
            snprintf(err, err_size, "column %zu of the header has no name", c + 1);
            return -EINVAL;
        }
        for (size_t k = 0; k < c; k++) {
            if (strcasecmp(l->src.columns[k], l->src.columns[c]) == 0) {
                snprintf(err, err_size,
                         "column '%s' appears twice in the header (columns %zu and %zu)",
                         l->src.columns[c], k + 1, c + 1);
                return -EINVAL;
            }
        }
    }
    for (int f = 0; f < FIELD_COUNT; f++) {
        const char *want = l->config->import.columns[f] ? l->config->import.columns[f]
                                                        : field_name((enum crier_field)f);
        l->field_column[f] = -1;
        for (size_t c = 0; c < l->src.column_count; c++) {
            if (strcasecmp(l->src.columns[c], want) == 0) {
                l->field_column[f] = (int)c;
                l->is_field[c] = true;
                break;
            }
        }
    }
    for (int f = FIELD_REF; f <= FIELD_NAME; f++) {
        if (l->field_column[f] < 0) {
            const char *want = l->config->import.columns[f] ? l->config->import.columns[f]
                                                            : field_name((enum crier_field)f);
            snprintf(err, err_size, "the list has no '%s' column (required%s%s%s)", want,
                     l->config->import.columns[f] ? " as " : "",
                     l->config->import.columns[f] ? field_name((enum crier_field)f) : "",
                     l->config->import.columns[f] ? " by import.columns" : "");
            return -EINVAL;
        }
    }
    return 0;
}

/* reject - a rejected row (or a dropped contact) goes to the reject file and to diag. */
static int reject(struct load *l, const char *disposition, const char *ref, const char *reason)
{
    if (l->refs_only)
        return 0;
    bool rejected = strcmp(disposition, "rejected") == 0;
    if (rejected && l->result.rejected <= DIAG_REJECTS && l->diag_buf) {
        if (l->result.rejected == DIAG_REJECTS)
            fprintf(l->diag_buf, "crier: more rejected rows%s\n",
                    l->rejects ? " in the reject file" : " (use --reject-file to keep them)");
        else
            fprintf(l->diag_buf, "crier: %s: %s%s%s: rejected: %s\n",
                    l->options->csv_path ? l->options->csv_path : "source", l->src.where,
                    ref ? " ref " : "", ref ? ref : "", reason);
    }
    if (l->rejects == NULL)
        return 0;
    csv_write_field(l->rejects, l->src.where);
    fputc(',', l->rejects);
    csv_write_field(l->rejects, disposition);
    fputc(',', l->rejects);
    csv_write_field(l->rejects, reason);
    for (size_t c = 0; c < l->src.column_count; c++) {
        fputc(',', l->rejects);
        csv_write_field(l->rejects, l->src.values[c]);
    }
    fputc('\n', l->rejects);
    return ferror(l->rejects) ? -EIO : 0;
}

/* json_string_add - value as a JSON string literal. The value is already valid UTF-8
 * (csv.c or the server checked it), so only quote, backslash and C0 controls need escaping.
 * Written here rather than with jansson because building and dumping a jansson object per
 * row was a quarter of the load's CPU time; PostgreSQL's json input rejects anything
 * malformed, so a mistake here fails the load rather than storing bad data. */
static void json_string_add(struct strbuf *b, const char *value)
{
    strbuf_add(b, "\"", 1);
    const char *run = value;
    for (const char *p = value; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        strbuf_add(b, run, (size_t)(p - run));
        char escape[8];
        if (c == '"' || c == '\\')
            snprintf(escape, sizeof(escape), "\\%c", c);
        else if (c == '\n')
            snprintf(escape, sizeof(escape), "\\n");
        else if (c == '\r')
            snprintf(escape, sizeof(escape), "\\r");
        else if (c == '\t')
            snprintf(escape, sizeof(escape), "\\t");
        else
            snprintf(escape, sizeof(escape), "\\u%04x", c);
        strbuf_add(b, escape, strlen(escape));
        run = p + 1;
    }
    strbuf_add(b, run, strlen(run));
    strbuf_add(b, "\"", 1);
}

/* vars_json - the row's other columns as one JSON object, in l->vars. */
static const char *vars_json(struct load *l)
{
    struct strbuf *b = &l->vars;
    b->len = 0;
    strbuf_add(b, "{", 1);
    bool first = true;
    for (size_t c = 0; c < l->src.column_count; c++) {
        if (l->is_field[c])
            continue;
        if (!first)
            strbuf_add(b, ",", 1);
        first = false;
        json_string_add(b, l->src.columns[c]);
        strbuf_add(b, ":", 1);
        /* every row has every column, so a template finds the key even where it is empty */
        if (l->src.values[c] == NULL)
            strbuf_add(b, "null", 4);
        else
            json_string_add(b, l->src.values[c]);
    }
    strbuf_addc(b, '}');
    return b->data;
}

/* spool_notices - notice rows wait in a temporary file while the recipients' COPY is open
 * (one connection carries one COPY at a time); memory stays flat for any list size. */
static int spool_notices(struct load *l)
{
    if (l->notices.len == 0)
        return 0;
    if (l->notice_spool == NULL)
        l->notice_spool = tmpfile();
    if (l->notice_spool == NULL ||
        fwrite(l->notices.data, 1, l->notices.len, l->notice_spool) != l->notices.len) {
        snprintf(l->db->error, sizeof(l->db->error), "cannot spool notices to a temporary file: %s",
                 strerror(errno));
        return -EIO;
    }
    l->notices.len = 0;
    return 0;
}

/* end_recipients - close the recipients' COPY, e.g. before the source needs the connection. */
static int end_recipients(void *data)
{
    struct load *l = data;
    if (l->rstage.db && !l->refs_only)
        return stage_commit(l, &l->rstage, &l->recipients);
    int r = sender_stop(&l->sender);
    if (r == 0)
        r = copy_send(l->db, l->copy_recipients, &l->recipients_open, &l->recipients);
    if (r < 0)
        return r;
    return copy_end(l->db, &l->recipients_open);
}

/* copy_notices - the spooled notice rows, after every recipient is in (or the staging
 * table's, already sent beside them). */
static int copy_notices(struct load *l)
{
    int r = end_recipients(l);
    if (r == 0 && l->stage.db)
        return stage_end(l);
    if (r == 0)
        r = spool_notices(l);
    if (r < 0 || l->notice_spool == NULL)
        return r;
    rewind(l->notice_spool);
    bool open = false;
    size_t n;
    while ((n = fread(l->notices.data, 1, l->notices.cap, l->notice_spool)) > 0) {
        l->notices.len = n;
        r = copy_send(l->db, l->copy_notices, &open, &l->notices);
        if (r < 0)
            break;
    }
    if (r == 0 && ferror(l->notice_spool)) {
        snprintf(l->db->error, sizeof(l->db->error), "reading the notice spool: %s",
                 strerror(errno));
        r = -EIO;
    }
    int end = copy_end(l->db, &open);
    return r < 0 ? r : end;
}

/* recipients_flush - the buffered recipient rows to their COPY: the load's partition, or a
 * first load's staging table. */
static int recipients_flush(struct load *l)
{
    struct stage *st = &l->rstage;
    if (st->db == NULL)
        return sender_push(&l->sender, l->db, l->copy_recipients, &l->recipients_open,
                           &l->recipients);
    int r = sender_push(&st->sender, st->db, st->copy, &st->open, &l->recipients);
    return r < 0 ? stage_error_of(l, st->db, r) : 0;
}

/* load_ref - in the duplicate pass, a valid row's number and ref for crier_load_ref. */
static int load_ref(struct load *l, const char *ref)
{
    char number[24];
    snprintf(number, sizeof(number), "%lu", l->src.number);
    copy_value(&l->recipients, number, false);
    copy_value(&l->recipients, ref, true);
    if (l->recipients.len < COPY_CHUNK)
        return 0;
    return sender_push(&l->sender, l->db, l->copy_recipients, &l->recipients_open, &l->recipients);
}

/* row_accept - validate the current row into v: 1 to load it, 0 when it was rejected (or,
 * in the duplicate pass, only its ref was sent), < 0 on error. A row loaded with a contact
 * dropped has each dropped contact written to the reject file. v is the caller's to clear. */
static int row_accept(struct load *l, struct recipient_valid *v, const char **ret_ref)
{
    struct recipient_input in = {{0}};
    for (int f = 0; f < FIELD_COUNT; f++)
        in.field[f] = l->field_column[f] >= 0 ? l->src.values[l->field_column[f]] : NULL;
    int r = validate_recipient(&in, v);
    const char *ref = v->field[FIELD_REF] ? v->field[FIELD_REF] : in.field[FIELD_REF];
    *ret_ref = ref;
    if (r < 0) {
        l->result.rejected++;
        r = reject(l, "rejected", ref, v->reject_reason ? v->reject_reason : "invalid row");
        return r < 0 ? r : 0;
    }
    if (l->refs_only) {
        r = load_ref(l, ref);
        return r < 0 ? r : 0;
    }
    char *reason = dup_reason(&l->dups, ref, l->src.number, l->src.csv != NULL);
    if (reason) {
        l->result.rejected++;
        r = reject(l, "rejected", ref, reason);
        free(reason);
        return r < 0 ? r : 0;
    }
    if (v->note_count > 0)
        l->result.contacts_dropped++;
    for (size_t i = 0; i < v->note_count; i++)
        if ((r = reject(l, "contact-dropped", ref, v->notes[i])) < 0)
            return r;
    return 1;
}

/* row_first_channel - the policy's first channel that reaches the person (its index), or
 * -1 with reasons said (undeliverable). The row's variables are in l->vars afterwards. */
static int row_first_channel(struct load *l, const struct recipient_valid *v, const char *ref,
                             char *reasons, size_t reasons_size)
{
    struct crier_notice view = {
        .ref = ref,
        .name = v->field[FIELD_NAME],
        .email = v->has_email ? v->field[FIELD_EMAIL] : NULL,
        .fax = v->has_fax ? v->field[FIELD_FAX] : NULL,
        .country = v->field[FIELD_COUNTRY],
        .mailable = v->has_address,
        .vars_json = vars_json(l),
    };
    struct channel_usable_data usable = {.policy = l->campaign->policy, .notice = &view};
    return policy_first_channel((const char *const *)l->campaign->policy, l->policy_count, 0,
                                channel_reaches, &usable, reasons, reasons_size);
}

/* row_recipient - the recipient's COPY line, numbered seq, and its jurisdiction noted. */
static void row_recipient(struct load *l, const struct recipient_valid *v, const char *ref,
                          const char *seq)
{
    const char *country = v->field[FIELD_COUNTRY] ? v->field[FIELD_COUNTRY] : "US";
    char *notes = db_array_of((const char *const *)v->notes, v->note_count);
    struct strbuf *b = &l->recipients;
    copy_value(b, l->campaign_id, false);
    copy_value(b, seq, false);
    copy_value(b, l->load_id, false);
    copy_value(b, l->src.where, false);
    copy_value(b, ref, false);
    copy_value(b, v->field[FIELD_NAME], false);
    copy_value(b, v->has_email ? v->field[FIELD_EMAIL] : NULL, false);
    copy_value(b, v->has_fax ? v->field[FIELD_FAX] : NULL, false);
    for (int f = FIELD_ADDRESS1; f <= FIELD_POSTAL_CODE; f++)
        copy_value(b, v->field[f], false);
    copy_value(b, country, false);
    copy_value(b, v->has_address ? "t" : "f", false);
    copy_value(b, l->vars.data, false);
    copy_value(b, notes, true);
    free(notes);
    juris_add(&l->juris, country, v->field[FIELD_REGION]);
}

/* row_notice - the notice's COPY line: on the first channel that reaches the person, or
 * undeliverable (first < 0) with why. */
static void row_notice(struct load *l, long seq_number, const char *seq, int first,
                       const char *reasons, const char *region)
{
    const char *reason_items[1] = {reasons};
    char *reason_array = db_array_of(reason_items, reasons[0] ? 1 : 0);
    char index[16], notice_id[32], token[33];
    snprintf(index, sizeof(index), "%d", first < 0 ? 0 : first);
    snprintf(notice_id, sizeof(notice_id), "%lld",
             (long long)notice_id_make(l->campaign->id, seq_number));
    random_hex(token, sizeof(token));
    struct strbuf *b = &l->notices;
    copy_value(b, notice_id, false);
    copy_value(b, l->campaign_id, false);
    copy_value(b, seq, false);
    copy_value(b, first < 0 ? "undeliverable" : "ready", false);
    copy_value(b, l->campaign->policy[first < 0 ? 0 : first], false);
    copy_value(b, index, false);
    copy_value(b, reason_array, false);
    copy_value(b, token, false);
    /* the recipient's region, '' for none: the claim's hold check reads it here (021) */
    copy_value(b, region ? region : "", true);
    free(reason_array);
}

/* load_row - the current row: validated, then its recipient and notice buffered, and the
 * buffers handed to their COPYs when full. */
static int load_row(struct load *l)
{
    struct recipient_valid v;
    const char *ref = NULL;
    int r = row_accept(l, &v, &ref);
    if (r <= 0) {
        recipient_valid_clear(&v);
        return r;
    }
    char reasons[POLICY_REASON_MAX] = "";
    int first = row_first_channel(l, &v, ref, reasons, sizeof(reasons));
    long seq_number = l->next_seq++;
    char seq[32];
    snprintf(seq, sizeof(seq), "%ld", seq_number);
    row_recipient(l, &v, ref, seq);
    row_notice(l, seq_number, seq, first, reasons, v.field[FIELD_REGION]);
    recipient_valid_clear(&v);

    l->result.loaded++;
    if (first < 0)
        l->result.undeliverable++;
    if (l->recipients.len >= COPY_CHUNK && (r = recipients_flush(l)) < 0)
        return r;
    if (l->notices.len >= COPY_CHUNK)
        return notices_flush(l);
    return 0;
}

static void show_progress(struct load *l, bool done)
{
    if (!l->options->progress)
        return;
    double now = monotonic_seconds();
    if (!done && now - l->last_progress < 0.2)
        return;
    l->last_progress = now;
    size_t bytes = 0, total = 0;
    if (l->src.csv)
        csv_reader_progress(l->src.csv, &bytes, &total);
    if (total > 0) {
        int percent = (int)(100.0 * (double)bytes / (double)total);
        int filled = percent * 30 / 100;
        fprintf(stderr, "\r[%.*s%*s] %3d%% %ld rows", filled, "##############################",
                30 - filled, "", percent, l->result.rows);
    } else {
        fprintf(stderr, "\r%ld rows", l->result.rows);
    }
    if (done)
        fputc('\n', stderr);
}

static int load_begin(struct load *l, char *err, size_t err_size)
{
    struct crier_db *db = l->db;
    int r = campaign_get(db, l->options->campaign, true, &l->campaign);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    if (strcmp(l->campaign->state, "cancelled") == 0 ||
        strcmp(l->campaign->state, "completed") == 0) {
        snprintf(err, err_size, "cannot load into campaign '%s': it is %s", l->campaign->name,
                 l->campaign->state);
        return -EPERM;
    }
    l->policy_count = strv_length(l->campaign->policy);
    snprintf(l->campaign_id, sizeof(l->campaign_id), "%lld", (long long)l->campaign->id);
    const char *params[] = {l->campaign_id};
    PGresult *result = NULL;
    r = db_query(db, "SELECT coalesce(max(seq), 0) FROM crier.recipient WHERE campaign_id = $1", 1,
                 params, &result);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    l->first_seq = strtol(PQgetvalue(result, 0, 0), NULL, 10) + 1;
    l->next_seq = l->first_seq;
    PQclear(result);
    return 0;
}

static char *source_label(const struct import_options *o)
{
    if (o->csv_path)
        return xasprintf("csv:%s", o->csv_path);
    if (o->table)
        return xasprintf("table:%s", o->table);
    return xasprintf("query:%s", o->query);
}

static int load_finish(struct load *l, const char *sha)
{
    char *source = source_label(l->options);
    char **extra = xcalloc(l->src.column_count + 1, sizeof(char *));
    size_t extra_count = 0;
    for (size_t c = 0; c < l->src.column_count; c++)
        if (!l->is_field[c])
            extra[extra_count++] = l->src.columns[c];
    char *extra_array = db_array_of((const char *const *)extra, extra_count);
    free(extra);
    const char *params[] = {l->load_id,
                            DB_NUM(l->result.rows),
                            DB_NUM(l->result.loaded),
                            DB_NUM(l->result.rejected),
                            DB_NUM(l->result.contacts_dropped),
                            l->campaign_id,
                            l->options->actor,
                            source,
                            sha,
                            extra_array,
                            DB_NUM(l->result.undeliverable)};
    int r = db_exec(
        l->db,
        "WITH u AS (UPDATE crier.list_load SET rows_read = $2, loaded = $3, rejected = $4,"
        " contacts_dropped = $5, source_sha256 = $9, extra_columns = $10 WHERE id = $1"
        " RETURNING id),"
        " undeliverable AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
        " recipient_ref, channel, to_state, attempt, actor, reason)"
        " SELECT n.campaign_id, 'transition', n.id, r.ref, n.channel, 'undeliverable', 0, $7,"
        " array_to_string(n.reasons, '; ') FROM crier.notice n JOIN crier.recipient r"
        " ON r.campaign_id = n.campaign_id AND r.seq = n.recipient_seq"
        " WHERE r.campaign_id = $6 AND r.load_id = $1 AND n.campaign_id = $6"
        " AND n.state = 'undeliverable' AND $11::bigint > 0)" /* no scans when there are none */
        " INSERT INTO crier.dispatch_log (campaign_id, event, actor, detail, content_sha256)"
        " VALUES ($6, 'load', $7, 'load ' || $1 || ' from ' || $8 || ': ' || $2 || ' rows, ' ||"
        " $3 || ' loaded, ' || $4 || ' rejected, ' || $5 || ' with a contact dropped', $9)",
        11, params);
    free(source);
    free(extra_array);
    return r;
}

/* rejects_start - the reject file's header line, at the start of each pass. */
static int rejects_start(struct load *l, char *err, size_t err_size)
{
    if (l->rejects == NULL)
        return 0;
    rewind(l->rejects);
    if (ftruncate(fileno(l->rejects), 0) != 0) {
        snprintf(err, err_size, "%s: %s", l->reject_tmp, strerror(errno));
        return -EIO;
    }
    fputs("source_row,disposition,reason", l->rejects);
    for (size_t c = 0; c < l->src.column_count; c++) {
        fputc(',', l->rejects);
        csv_write_field(l->rejects, l->src.columns[c]);
    }
    fputc('\n', l->rejects);
    return 0;
}

/* diag_start - (re)start holding the pass's rejected rows for diag. */
static void diag_start(struct load *l)
{
    if (l->diag_buf)
        fclose(l->diag_buf);
    free(l->diag_text);
    l->diag_text = NULL;
    l->diag_buf = l->diag ? open_memstream(&l->diag_text, &l->diag_size) : NULL;
}

/* diag_flush - what the last pass had to say about rejected rows. */
static void diag_flush(struct load *l)
{
    if (l->diag_buf == NULL)
        return;
    fclose(l->diag_buf);
    l->diag_buf = NULL;
    if (l->diag_text && l->diag_size > 0)
        fwrite(l->diag_text, 1, l->diag_size, l->diag);
}

/* load_rows - every row of the source through load_row. */
static int load_rows(struct load *l, char *err, size_t err_size)
{
    int r;
    while ((r = source_next(&l->src, err, err_size)) > 0) {
        l->result.rows++;
        r = load_row(l);
        if (r < 0) {
            if (r == -EIO && l->rejects && ferror(l->rejects))
                snprintf(err, err_size, "%s: write error", l->reject_tmp);
            else
                snprintf(err, err_size, "%s", l->db->error);
            return r;
        }
        show_progress(l, false);
    }
    return r;
}

/* load_pass - one pass: partitions, rows, notices, attach. A duplicate ref fails it with
 * -EEXIST (SQLSTATE 23505), from the recipients' COPY or the attach. */
static int load_pass(struct load *l, char *err, size_t err_size)
{
    int r = partitions_prepare(l);
    if (r < 0) {
        snprintf(err, err_size, "%s", l->db->error);
        return r;
    }
    r = load_rows(l, err, err_size);
    if (r < 0)
        return r;
    if (l->hash && l->hash->path == NULL)
        hasher_start(l->hash, l->options->csv_path);
    show_progress(l, true);
    r = copy_notices(l);
    if (r == 0)
        r = partitions_attach(l);
    if (r < 0)
        snprintf(err, err_size, "%s", l->db->error);
    return r;
}

/* The duplicates of a load, in source order: rows whose ref an earlier row of this load or
 * an earlier load has. campaign_id is the load's own number, formatted by it. */
static const char dups_sql[] = "DECLARE crier_load_dups NO SCROLL CURSOR FOR"
                               " SELECT number, coalesce(first, 0), coalesce(earlier, '') FROM ("
                               " SELECT t.number, e.source_row AS earlier,"
                               " min(t.number) OVER (PARTITION BY t.ref) AS first"
                               " FROM pg_temp.crier_load_ref t LEFT JOIN crier.recipient e"
                               " ON e.campaign_id = %s AND e.ref = t.ref) d"
                               " WHERE earlier IS NOT NULL OR number <> first ORDER BY number";

/* The same list from a first load's own unattached partition, whose rows are the (row, ref)
 * pairs the refs pass would write: every valid row, in source order by seq, numbered by its
 * source_row ("line 17", "row 17"). The number is parsed only for the duplicates found. A
 * fresh partition means no earlier load, so no "earlier" column to find. */
static const char dups_partition_sql[] =
    "DECLARE crier_load_dups NO SCROLL CURSOR FOR"
    " SELECT substring(source_row FROM '[0-9]+$')::bigint,"
    " substring(first_row FROM '[0-9]+$')::bigint, '' FROM ("
    " SELECT seq, source_row, first_value(seq) OVER w AS first_seq,"
    " first_value(source_row) OVER w AS first_row FROM crier.%s"
    " WINDOW w AS (PARTITION BY ref ORDER BY seq)) d WHERE seq <> first_seq ORDER BY seq";

/* dups_spool - the duplicates query (from the refs pass's table or from the first pass's
 * partition), fetched in batches into a temporary file. */
static int dups_spool(struct load *l, const char *partition)
{
    char *sql =
        partition ? xasprintf(dups_partition_sql, partition) : xasprintf(dups_sql, l->campaign_id);
    /* the sort by ref holds a row per loaded row: in memory, not in 4 MB runs on disk */
    int r = db_exec(l->db, "SET LOCAL work_mem = '256MB'", 0, NULL);
    if (r == 0)
        r = db_exec(l->db, sql, 0, NULL);
    free(sql);
    l->dups.spool = tmpfile();
    if (l->dups.spool == NULL) {
        snprintf(l->db->error, sizeof(l->db->error), "cannot create a temporary file: %s",
                 strerror(errno));
        return -EIO;
    }
    int rows = 1;
    while (r == 0 && rows > 0) {
        PGresult *result = NULL;
        r = db_query(l->db, "FETCH FORWARD " FETCH_ROWS " FROM crier_load_dups", 0, NULL, &result);
        rows = r == 0 ? PQntuples(result) : 0;
        for (int i = 0; i < rows; i++)
            fprintf(l->dups.spool, "%s\t%s\t%s\n", PQgetvalue(result, i, 0),
                    PQgetvalue(result, i, 1), PQgetvalue(result, i, 2));
        PQclear(result);
    }
    if (r == 0 && (fflush(l->dups.spool) != 0 || ferror(l->dups.spool))) {
        snprintf(l->db->error, sizeof(l->db->error), "writing a temporary file: %s",
                 strerror(errno));
        return -EIO;
    }
    if (r == 0)
        r = db_exec(l->db, "CLOSE crier_load_dups", 0, NULL);
    rewind(l->dups.spool);
    return r;
}

/*
 * dups_from_partition - a first load's attach met a duplicate ref. Its rows are all in the
 * unattached partition, behind the savepoint the attach set: they tell which rows repeat a
 * ref without reading the source a second time (the refs pass, find_duplicates). Returns
 * -EEXIST with the list spooled, for the last pass.
 */
static int dups_from_partition(struct load *l, bool staged)
{
    char error[sizeof(l->db->error)];
    snprintf(error, sizeof(error), "%s", l->db->error);
    char partition[48];
    snprintf(partition, sizeof(partition), "recipient_c%s", l->campaign_id);
    int r = staged ? 0 : db_exec(l->db, "ROLLBACK TO SAVEPOINT crier_attach", 0, NULL);
    if (r == 0)
        r = dups_spool(l, staged ? l->rstage.name : partition);
    if (r < 0)
        return r;
    snprintf(l->db->error, sizeof(l->db->error), "%s", error);
    snprintf(l->db->sqlstate, sizeof(l->db->sqlstate), "23505");
    return -EEXIST;
}

/* refs_pass - read the source again, sending only the (row, ref) pairs of valid rows to a
 * temporary table, and spool the duplicates the database finds there (see struct dup_list). */
static int refs_pass(struct load *l, char *err, size_t err_size)
{
    int r = db_exec(l->db,
                    "CREATE TEMP TABLE crier_load_ref (number bigint NOT NULL, ref text NOT NULL)"
                    " ON COMMIT DROP",
                    0, NULL);
    if (r < 0) {
        snprintf(err, err_size, "%s", l->db->error);
        return r;
    }
    r = source_rewind(&l->src, err, err_size);
    if (r < 0)
        return r;
    char *copy_recipients = l->copy_recipients;
    static char copy_refs[] = "COPY pg_temp.crier_load_ref (number, ref) FROM STDIN";
    l->copy_recipients = copy_refs;
    l->refs_only = true;
    r = load_rows(l, err, err_size);
    if (r == 0 && (r = end_recipients(l)) < 0)
        snprintf(err, err_size, "%s", l->db->error);
    l->refs_only = false;
    l->copy_recipients = copy_recipients;
    if (r < 0)
        return r;
    r = dups_spool(l, NULL);
    if (r == 0)
        r = db_exec(l->db, "DROP TABLE pg_temp.crier_load_ref", 0, NULL);
    if (r < 0)
        snprintf(err, err_size, "%s", l->db->error);
    return r;
}

/* find_duplicates - back to the savepoint, and the list of duplicates: already spooled
 * when a first load's attach found them (dups_from_partition), else from the refs pass. */
static int find_duplicates(struct load *l, char *err, size_t err_size)
{
    sender_stop(&l->sender); /* stopped already by the failed pass; the connection is ours */
    int r = db_exec(l->db, "ROLLBACK TO SAVEPOINT crier_load", 0, NULL);
    if (r < 0) {
        snprintf(err, err_size, "%s", l->db->error);
        return r;
    }
    l->recipients_open = false;
    l->recipients.len = 0;
    l->notices.len = 0;
    if (l->dups.spool == NULL && (r = refs_pass(l, err, err_size)) < 0)
        return r;
    l->dups.known = true;
    dup_advance(&l->dups);
    return source_rewind(&l->src, err, err_size);
}

/* load_restart - forget the first pass: counts, rejects, held diagnostics, spooled notices. */
static int load_restart(struct load *l, char *err, size_t err_size)
{
    l->result = (struct import_result){0};
    juris_clear(&l->juris);
    l->next_seq = l->first_seq;
    diag_start(l);
    if (l->notice_spool) {
        fclose(l->notice_spool);
        l->notice_spool = NULL;
    }
    return rejects_start(l, err, err_size);
}

/* load_with_dups - a load whose first pass met a duplicate ref: find them all, load again,
 * and make sure the CSV file is the one whose hash was taken at the start. */
static int load_with_dups(struct load *l, const char *sha, char *err, size_t err_size)
{
    int r = find_duplicates(l, err, err_size);
    if (r == 0)
        r = load_restart(l, err, err_size);
    if (r == 0)
        r = load_pass(l, err, err_size);
    if (r == 0 && l->dups.spool && ferror(l->dups.spool)) {
        snprintf(err, err_size, "reading the duplicates' temporary file: %s", strerror(errno));
        r = -EIO;
    }
    char again[65] = "";
    if (r == 0 && l->options->csv_path &&
        (sha256_file_hex(l->options->csv_path, again) < 0 || strcmp(again, sha) != 0)) {
        snprintf(err, err_size, "%s: the file changed while it was loaded", l->src.name);
        r = -EBADMSG;
    }
    return r;
}

/* load_start - the load's list_load row, the reject file, and the savepoint of its passes. */
static int load_start(struct load *l, char *err, size_t err_size)
{
    const struct import_options *options = l->options;
    if (options->reject_path) {
        /* written beside the target and renamed at the end: no half-written reject file */
        l->reject_tmp = xasprintf("%s.tmp", options->reject_path);
        l->rejects = fopen(l->reject_tmp, "w");
        if (l->rejects == NULL) {
            snprintf(err, err_size, "%s: %s", l->reject_tmp, strerror(errno));
            return -EIO;
        }
    }
    int r = rejects_start(l, err, err_size);
    if (r < 0)
        return r;
    diag_start(l);

    char *source = source_label(options);
    const char *params[] = {l->campaign_id, options->actor, source};
    PGresult *result = NULL;
    r = db_query(l->db,
                 "INSERT INTO crier.list_load (campaign_id, source, rows_read, loaded, rejected,"
                 " contacts_dropped, loaded_by) VALUES ($1, $3, 0, 0, 0, 0, $2) RETURNING id",
                 3, params, &result);
    free(source);
    if (r == 0) {
        snprintf(l->load_id, sizeof(l->load_id), "%s", PQgetvalue(result, 0, 0));
        PQclear(result);
        r = db_exec(l->db, "SAVEPOINT crier_load", 0, NULL);
    }
    if (r < 0)
        snprintf(err, err_size, "%s", l->db->error);
    return r;
}

/* load_commit - the tallies and the log, the reject file on disk, COMMIT. */
static int load_commit(struct load *l, const char *sha, char *err, size_t err_size)
{
    int r = notice_tally(l);
    if (r == 0)
        r = juris_store(&l->juris, l->db, l->campaign_id, l->load_id);
    if (r == 0)
        r = load_finish(l, sha[0] ? sha : NULL);
    if (r < 0) {
        snprintf(err, err_size, "%s", l->db->error);
        return r;
    }
    if (l->rejects &&
        (fflush(l->rejects) != 0 || fsync(fileno(l->rejects)) != 0 || ferror(l->rejects))) {
        snprintf(err, err_size, "%s: %s", l->reject_tmp, strerror(errno));
        return -EIO;
    }
    r = db_commit(l->db);
    if (r < 0) {
        snprintf(err, err_size, "%s", l->db->error);
        return r;
    }
    if (l->rejects) {
        fclose(l->rejects);
        l->rejects = NULL;
        if (rename(l->reject_tmp, l->options->reject_path) != 0 && l->diag)
            fprintf(l->diag, "crier: the load committed, but %s could not be renamed to %s: %s\n",
                    l->reject_tmp, l->options->reject_path, strerror(errno));
    }
    return 0;
}

/*
 * load_find_indexes - after the commit, the `audit find` indexes that the campaign's
 * partition lacks, and any that an interrupted load left missing elsewhere. The rows are
 * loaded whatever happens here: a failure is said on diag and left to the next load or
 * `crier db migrate`; audit find stays correct meanwhile, only slower.
 */
static void load_find_indexes(struct load *l)
{
    char err[1024] = "";
    if (l->options->progress)
        fprintf(stderr, "committed; building the find indexes\n");
    long built = 0; /* besides those built on a first load's staging table */
    int r = find_index_build(l->db, l->config->conninfo, FIND_INDEX_CONNECTIONS, 0, &built, err,
                             sizeof(err));
    l->result.find_built += built;
    if (r < 0 && l->diag)
        fprintf(l->diag,
                "crier: the load committed, but not every find index was built: %s\n"
                "crier: `crier db migrate` or the next load builds them; `audit find` reads the"
                " whole campaign meanwhile\n",
                err);
    if (find_index_missing(l->db, l->campaign->id, &l->result.find_missing, NULL) < 0)
        l->result.find_missing = -1; /* unknown: the connection failed */
}

/*
 * load_region_index - after the commit, the claim's region index of a campaign under a
 * region hold placed before its first load (022_region_index_lazy.sql; a placement builds
 * it once the partition exists). Nothing for a campaign without one: the load never pays
 * for it. A failure is said and left: the claim stays correct without it.
 */
static void load_region_index(struct load *l)
{
    char id[32];
    long built = 0;
    snprintf(id, sizeof(id), "%" PRId64, l->campaign->id);
    if (hold_region_index_build(l->db, NULL, id, &built) < 0 && l->diag)
        fprintf(l->diag,
                "crier: the load committed, but the claim's region index (the campaign has a"
                " region hold) was not built: %s\ncrier: `crier db migrate` or the next region"
                " hold builds it; claims under the hold step over the held notices meanwhile\n",
                l->db->error);
}

static void load_free(struct load *l)
{
    struct crier_db *db = l->db;
    sender_free(&l->sender);
    stage_free(&l->stage);
    stage_free(&l->rstage);
    juris_clear(&l->juris);
    source_close(&l->src);
    campaign_free(l->campaign);
    if (l->recipients_open) {
        PQputCopyEnd(db->conn, "load failed");
        PGresult *pending;
        while ((pending = PQgetResult(db->conn)) != NULL)
            PQclear(pending);
    }
    if (l->notice_spool)
        fclose(l->notice_spool);
    if (l->dups.spool)
        fclose(l->dups.spool);
    if (l->diag_buf)
        fclose(l->diag_buf);
    FREE_MANY(l->diag_text, l->recipients.data, l->vars.data, l->copy_recipients, l->copy_notices,
              l->notices.data, l->is_field, l->reject_tmp);
}

int import_load(struct crier_db *db, const struct crier_config *config,
                const struct import_options *options, FILE *diag, struct import_result *ret_result,
                char *err, size_t err_size)
{
    struct load l = {.db = db, .config = config, .options = options, .diag = diag};
    struct hasher hash = {.result = 0};
    int r;

    if (options->csv_path) {
        FILE *f = fopen(options->csv_path, "rb");
        if (f == NULL) {
            r = -errno;
            snprintf(err, err_size, "%s: %s", options->csv_path, strerror(-r));
            return r == -ENOENT ? -ENOENT : -EIO;
        }
        fclose(f);
    }
    r = db_begin(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    if (options->csv_path)
        l.hash = &hash;
    sender_init(&l.sender);
    sender_init(&l.stage.sender);
    sender_init(&l.rstage.sender);
    r = load_begin(&l, err, err_size);
    if (r == 0 && options->csv_path)
        r = source_open_csv(&l.src, options->csv_path, err, err_size);
    else if (r == 0)
        r = source_open_sql(&l.src, db, options->table, options->query, err, err_size);
    l.src.before_fetch = end_recipients;
    l.src.before_fetch_data = &l;
    if (r == 0)
        r = map_columns(&l, err, err_size);
    if (r == 0)
        r = load_start(&l, err, err_size);
    if (r == 0)
        r = load_pass(&l, err, err_size);
    if (l.hash && l.hash->path == NULL && r == -EEXIST) /* not met before the file's end */
        hasher_start(l.hash, options->csv_path);
    int hashed = hasher_wait(&hash);
    if (hashed < 0 && (r == 0 || r == -EEXIST)) {
        snprintf(err, err_size, "%s: %s", options->csv_path, strerror(-hashed));
        r = -EIO;
    }
    if (r == -EEXIST && strcmp(db->sqlstate, "23505") == 0 && !l.dups.known)
        r = load_with_dups(&l, hash.hex, err, err_size);
    if (r == 0)
        r = load_commit(&l, hash.hex, err, err_size);
    diag_flush(&l);
    if (r == 0) {
        load_find_indexes(&l);
        load_region_index(&l);
        l.result.load_id = strtoll(l.load_id, NULL, 10);
        *ret_result = l.result;
    } else {
        if (l.options->progress)
            fputc('\n', stderr);
        sender_stop(&l.sender); /* before anything else uses the connection */
        db_rollback(db);
        if (l.rejects) {
            fclose(l.rejects);
            l.rejects = NULL;
            unlink(l.reject_tmp);
        }
    }
    load_free(&l);
    return r;
}
