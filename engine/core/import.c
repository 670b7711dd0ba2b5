/*
 * import.c - `crier campaign load`: a CSV file, a table or a query into a campaign.
 *
 * Reads rows from a source, validates each (validate.c), picks each notice's first channel
 * (policy.c) and writes recipients and notices with COPY in batches, all inside one
 * transaction that holds the campaign row locked. Any error before COMMIT leaves the
 * campaign exactly as it was.
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
#include "crier/strbuf.h"
#include "crier/policy.h"
#include "crier/validate.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#define COPY_CHUNK   (256 * 1024) /* bytes buffered before they go to the server */
#define FETCH_ROWS   "5000"
#define DIAG_REJECTS 20 /* rejected rows echoed to diag; the reject file has all */

/* ---- a set of refs, to name both rows of a duplicate ---------------------------------- */

/* Refs are copied into large chunks (one allocation per megabyte, not per row). */
struct ref_chunk {
    struct ref_chunk *next;
    size_t used;
    char data[1 << 20];
};

struct ref_entry {
    uint64_t hash; /* compared before the strings: most probes end here */
    const char *ref;
    const char *earlier;  /* source row in an earlier load ("line 7"), or NULL */
    unsigned long number; /* this load: the line (CSV) or row (SQL) number */
};

struct ref_set {
    struct ref_entry *slots;
    size_t capacity, count;
    struct ref_chunk *chunks;
};

static uint64_t ref_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static const char *ref_set_copy(struct ref_set *set, const char *s)
{
    size_t len = strlen(s) + 1;
    if (len > sizeof(set->chunks->data))
        return xstrdup(s); /* refs are short; this never happens with validated input */
    if (set->chunks == NULL || set->chunks->used + len > sizeof(set->chunks->data)) {
        struct ref_chunk *chunk = xmalloc(sizeof(*chunk));
        chunk->next = set->chunks;
        chunk->used = 0;
        set->chunks = chunk;
    }
    char *copy = set->chunks->data + set->chunks->used;
    memcpy(copy, s, len);
    set->chunks->used += len;
    return copy;
}

static void ref_set_grow(struct ref_set *set)
{
    struct ref_set bigger = {.capacity = set->capacity ? set->capacity * 2 : 4096,
                             .chunks = set->chunks};
    bigger.slots = xcalloc(bigger.capacity, sizeof(struct ref_entry));
    size_t mask = bigger.capacity - 1;
    for (size_t i = 0; i < set->capacity; i++) {
        struct ref_entry *e = &set->slots[i];
        if (e->ref == NULL)
            continue;
        size_t j = e->hash & mask;
        while (bigger.slots[j].ref)
            j = (j + 1) & mask;
        bigger.slots[j] = *e;
        bigger.count++;
    }
    free(set->slots);
    *set = bigger;
}

/* ref_set_add - add ref; if it is there already, return its entry (and add nothing). */
static const struct ref_entry *ref_set_add(struct ref_set *set, const char *ref,
                                           const char *earlier, unsigned long number)
{
    if ((set->count + 1) * 2 >= set->capacity) /* half full at most: short probe runs */
        ref_set_grow(set);
    size_t mask = set->capacity - 1;
    uint64_t hash = ref_hash(ref);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct ref_entry *e = &set->slots[i];
        if (e->ref == NULL) {
            e->hash = hash;
            e->ref = ref_set_copy(set, ref);
            e->earlier = earlier ? ref_set_copy(set, earlier) : NULL;
            e->number = number;
            set->count++;
            return NULL;
        }
        if (e->hash == hash && strcmp(e->ref, ref) == 0)
            return e;
    }
}

static void ref_set_clear(struct ref_set *set)
{
    while (set->chunks) {
        struct ref_chunk *next = set->chunks->next;
        free(set->chunks);
        set->chunks = next;
    }
    free(set->slots);
    memset(set, 0, sizeof(*set));
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

/* source_open_sql - DECLARE a cursor in the load's transaction: a consistent snapshot. */
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
        sql = xasprintf("DECLARE crier_load_source NO SCROLL CURSOR FOR SELECT * FROM %s%s%s",
                        schema_quoted ? schema_quoted : "", schema_quoted ? "." : "", name_quoted);
        PQfreemem(schema_quoted);
        PQfreemem(name_quoted);
    } else {
        sql = xasprintf("DECLARE crier_load_source NO SCROLL CURSOR FOR %s", query);
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

static void source_close(struct source *src)
{
    csv_reader_free(src->csv);
    PQclear(src->fetched);
    strv_free(src->columns);
    free(src->values);
    memset(src, 0, sizeof(*src));
}

/* ---- COPY text format ------------------------------------------------------------------ */

/* copy_value - one column in COPY's text format: NULL is \N, specials are escaped. */
static void copy_value(struct strbuf *b, const char *value, bool last)
{
    if (value == NULL) {
        strbuf_add(b, "\\N", 2);
    } else {
        const char *run = value;
        for (const char *p = value; *p; p++) {
            const char *escape = NULL;
            switch (*p) {
            case '\\':
                escape = "\\\\";
                break;
            case '\n':
                escape = "\\n";
                break;
            case '\r':
                escape = "\\r";
                break;
            case '\t':
                escape = "\\t";
                break;
            default:
                continue;
            }
            strbuf_add(b, run, (size_t)(p - run));
            strbuf_add(b, escape, 2);
            run = p + 1;
        }
        strbuf_add(b, run, strlen(run));
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

/* ---- the load ------------------------------------------------------------------------- */

struct load {
    struct crier_db *db;
    const struct crier_config *config;
    const struct import_options *options;
    struct campaign *campaign;
    size_t policy_count;
    struct source src;
    int field_column[FIELD_COUNT]; /* source column of each field, -1 if absent */
    bool *is_field;                /* per source column: a standard field, not a variable */
    struct ref_set refs;
    struct strbuf recipients, notices;
    struct strbuf vars;    /* the current row's variables as JSON */
    bool recipients_open;  /* the recipients' COPY is in progress */
    bool fresh_partitions; /* this load created the campaign's partitions */
    char *copy_recipients; /* copy_recipients_sql for this campaign */
    char *copy_notices;
    FILE *notice_spool; /* notice rows waiting for the recipients' COPY to end */
    long next_seq;
    char campaign_id[32], load_id[32];
    FILE *rejects;
    FILE *diag;
    struct import_result result;
    double last_progress;
};

/* The COPYs go straight into the campaign's partitions (crier.recipient_cID, notice_cID). */
static const char copy_recipients_sql[] =
    "COPY crier.recipient_c%s (campaign_id, seq, load_id, source_row, ref, name, email, fax,"
    " address1, address2, city, region, postal_code, country, mailable, vars, notes)"
    " FROM STDIN";
static const char copy_notices_sql[] =
    "COPY crier.notice_c%s (id, campaign_id, recipient_seq, state, channel, channel_index,"
    " reasons, token) FROM STDIN";

/*
 * partitions_prepare - a campaign's first load creates its two partitions, unattached and
 * without indexes; partitions_attach() attaches them after the COPYs, and PostgreSQL then
 * builds their indexes in one sorted pass each, several times faster than row by row.
 * The CHECK lets ATTACH skip its validation scan. A failed load rolls all of it back.
 */
static int partitions_prepare(struct load *l)
{
    /* crier.partitions_create (005_roles.sql) creates them as the schema owner, so that a
     * member of crier_operator can load a new campaign, and says whether it did */
    const char *params[] = {l->campaign_id};
    PGresult *result = NULL;
    int r = db_query(l->db, "SELECT crier.partitions_create($1)", 1, params, &result);
    if (r < 0)
        return r;
    l->fresh_partitions = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    return 0;
}

/* partitions_attach - and the campaign's notice tallies (006_scale.sql), which the COPYs
 * into the partition by name did not update. */
static int partitions_attach(struct load *l)
{
    const char *params[] = {l->campaign_id};
    if (l->fresh_partitions) {
        int r = db_exec(l->db, "SELECT crier.partitions_attach($1)", 1, params);
        if (r < 0)
            return r;
    }
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
    bool rejected = strcmp(disposition, "rejected") == 0;
    if (rejected && l->result.rejected <= DIAG_REJECTS && l->diag) {
        if (l->result.rejected == DIAG_REJECTS)
            fprintf(l->diag, "crier: more rejected rows%s\n",
                    l->rejects ? " in the reject file" : " (use --reject-file to keep them)");
        else
            fprintf(l->diag, "crier: %s: %s%s%s: rejected: %s\n",
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

struct usable_data {
    char *const *policy;
    const struct crier_notice *notice;
};

static bool load_usable(size_t index, void *data, const char **ret_why)
{
    const struct usable_data *u = data;
    enum crier_channel_id id;
    if (channel_id_from_name(u->policy[index], &id) < 0) {
        *ret_why = "unknown channel";
        return false;
    }
    return channel_reachable(id, u->notice, ret_why);
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
    int r = copy_send(l->db, l->copy_recipients, &l->recipients_open, &l->recipients);
    if (r < 0)
        return r;
    return copy_end(l->db, &l->recipients_open);
}

/* copy_notices - the spooled notice rows, after every recipient is in. */
static int copy_notices(struct load *l)
{
    int r = end_recipients(l);
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

/* load_row - validate the current row and buffer its recipient and notice. */
static int load_row(struct load *l)
{
    struct recipient_input in = {{0}};
    for (int f = 0; f < FIELD_COUNT; f++)
        in.field[f] = l->field_column[f] >= 0 ? l->src.values[l->field_column[f]] : NULL;
    struct recipient_valid v;
    int r = validate_recipient(&in, &v);
    const char *ref = v.field[FIELD_REF] ? v.field[FIELD_REF] : in.field[FIELD_REF];
    if (r < 0) {
        l->result.rejected++;
        r = reject(l, "rejected", ref, v.reject_reason ? v.reject_reason : "invalid row");
        recipient_valid_clear(&v);
        return r;
    }
    const struct ref_entry *seen = ref_set_add(&l->refs, ref, NULL, l->src.number);
    if (seen) {
        char *reason = seen->earlier
                           ? xasprintf("duplicate ref '%s' (first at %s of an earlier load)", ref,
                                       seen->earlier)
                           : xasprintf("duplicate ref '%s' (first at %s %lu)", ref,
                                       l->src.csv ? "line" : "row", seen->number);
        l->result.rejected++;
        r = reject(l, "rejected", ref, reason);
        free(reason);
        recipient_valid_clear(&v);
        return r;
    }
    if (v.note_count > 0) {
        l->result.contacts_dropped++;
        for (size_t i = 0; i < v.note_count && r == 0; i++)
            r = reject(l, "contact-dropped", ref, v.notes[i]);
        if (r < 0) {
            recipient_valid_clear(&v);
            return r;
        }
    }

    struct crier_notice view = {
        .ref = ref,
        .name = v.field[FIELD_NAME],
        .email = v.has_email ? v.field[FIELD_EMAIL] : NULL,
        .fax = v.has_fax ? v.field[FIELD_FAX] : NULL,
        .country = v.field[FIELD_COUNTRY],
        .mailable = v.has_address,
    };
    const char *vars = vars_json(l);
    view.vars_json = vars;
    struct usable_data usable = {l->campaign->policy, &view};
    char reasons[POLICY_REASON_MAX] = "";
    int first = policy_first_channel((const char *const *)l->campaign->policy, l->policy_count, 0,
                                     load_usable, &usable, reasons, sizeof(reasons));

    char seq[32];
    snprintf(seq, sizeof(seq), "%ld", l->next_seq++);
    char *notes = db_array_of((const char *const *)v.notes, v.note_count);
    struct strbuf *b = &l->recipients;
    copy_value(b, l->campaign_id, false);
    copy_value(b, seq, false);
    copy_value(b, l->load_id, false);
    copy_value(b, l->src.where, false);
    copy_value(b, ref, false);
    copy_value(b, v.field[FIELD_NAME], false);
    copy_value(b, view.email, false);
    copy_value(b, view.fax, false);
    for (int f = FIELD_ADDRESS1; f <= FIELD_POSTAL_CODE; f++)
        copy_value(b, v.field[f], false);
    copy_value(b, v.field[FIELD_COUNTRY] ? v.field[FIELD_COUNTRY] : "US", false);
    copy_value(b, v.has_address ? "t" : "f", false);
    copy_value(b, vars, false);
    copy_value(b, notes, true);
    free(notes);

    char *reason_items[1] = {reasons};
    char *reason_array = db_array_of((const char *const *)reason_items, reasons[0] ? 1 : 0);
    char index[16];
    snprintf(index, sizeof(index), "%d", first < 0 ? 0 : first);
    b = &l->notices;
    char notice_id[32];
    snprintf(notice_id, sizeof(notice_id), "%lld",
             (long long)notice_id_make(l->campaign->id, l->next_seq - 1));
    copy_value(b, notice_id, false);
    copy_value(b, l->campaign_id, false);
    copy_value(b, seq, false);
    copy_value(b, first < 0 ? "undeliverable" : "ready", false);
    copy_value(b, l->campaign->policy[first < 0 ? 0 : first], false);
    copy_value(b, index, false);
    copy_value(b, reason_array, false);
    char token[33];
    random_hex(token, sizeof(token));
    copy_value(b, token, true);
    free(reason_array);
    recipient_valid_clear(&v);

    l->result.loaded++;
    if (first < 0)
        l->result.undeliverable++;
    if (l->recipients.len >= COPY_CHUNK &&
        (r = copy_send(l->db, l->copy_recipients, &l->recipients_open, &l->recipients)) < 0)
        return r;
    if (l->notices.len >= COPY_CHUNK)
        return spool_notices(l);
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
    l->copy_recipients = xasprintf(copy_recipients_sql, l->campaign_id);
    l->copy_notices = xasprintf(copy_notices_sql, l->campaign_id);
    r = partitions_prepare(l);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }

    /* refs of earlier loads, so that a duplicate across loads names both */
    const char *params[] = {l->campaign_id};
    PGresult *result = NULL;
    r = db_query(db,
                 "SELECT ref, source_row, (SELECT coalesce(max(seq), 0) FROM crier.recipient"
                 " WHERE campaign_id = $1) FROM crier.recipient WHERE campaign_id = $1"
                 " UNION ALL SELECT NULL, NULL, 0",
                 1, params, &result);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    int rows = PQntuples(result);
    for (int i = 0; i < rows - 1; i++)
        ref_set_add(&l->refs, PQgetvalue(result, i, 0), PQgetvalue(result, i, 1), 0);
    l->next_seq = strtol(PQgetvalue(result, 0, 2), NULL, 10) + 1;
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
    char counts[4][32];
    snprintf(counts[0], sizeof(counts[0]), "%ld", l->result.rows);
    snprintf(counts[1], sizeof(counts[1]), "%ld", l->result.loaded);
    snprintf(counts[2], sizeof(counts[2]), "%ld", l->result.rejected);
    snprintf(counts[3], sizeof(counts[3]), "%ld", l->result.contacts_dropped);
    char **extra = xcalloc(l->src.column_count + 1, sizeof(char *));
    size_t extra_count = 0;
    for (size_t c = 0; c < l->src.column_count; c++)
        if (!l->is_field[c])
            extra[extra_count++] = l->src.columns[c];
    char *extra_array = db_array_of((const char *const *)extra, extra_count);
    free(extra);
    const char *params[] = {l->load_id,     counts[0],         counts[1], counts[2], counts[3],
                            l->campaign_id, l->options->actor, source,    sha,       extra_array};
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
        " AND n.state = 'undeliverable')"
        " INSERT INTO crier.dispatch_log (campaign_id, event, actor, detail, content_sha256)"
        " VALUES ($6, 'load', $7, 'load ' || $1 || ' from ' || $8 || ': ' || $2 || ' rows, ' ||"
        " $3 || ' loaded, ' || $4 || ' rejected, ' || $5 || ' with a contact dropped', $9)",
        10, params);
    free(source);
    free(extra_array);
    return r;
}

int import_load(struct crier_db *db, const struct crier_config *config,
                const struct import_options *options, FILE *diag, struct import_result *ret_result,
                char *err, size_t err_size)
{
    struct load l = {.db = db, .config = config, .options = options, .diag = diag};
    char sha[65] = "";
    char *reject_tmp = NULL;
    int r;

    if (options->csv_path) {
        r = sha256_file_hex(options->csv_path, sha);
        if (r < 0) {
            snprintf(err, err_size, "%s: %s", options->csv_path, strerror(-r));
            return r == -ENOENT ? -ENOENT : -EIO;
        }
    }
    r = db_begin(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    r = load_begin(&l, err, err_size);
    if (r < 0)
        goto fail;
    if (options->csv_path)
        r = source_open_csv(&l.src, options->csv_path, err, err_size);
    else
        r = source_open_sql(&l.src, db, options->table, options->query, err, err_size);
    if (r < 0)
        goto fail;
    l.src.before_fetch = end_recipients;
    l.src.before_fetch_data = &l;
    r = map_columns(&l, err, err_size);
    if (r < 0)
        goto fail;
    if (options->reject_path) {
        /* written beside the target and renamed at the end: no half-written reject file */
        reject_tmp = xasprintf("%s.tmp", options->reject_path);
        l.rejects = fopen(reject_tmp, "w");
        if (l.rejects == NULL) {
            snprintf(err, err_size, "%s: %s", reject_tmp, strerror(errno));
            r = -EIO;
            goto fail;
        }
        fputs("source_row,disposition,reason", l.rejects);
        for (size_t c = 0; c < l.src.column_count; c++) {
            fputc(',', l.rejects);
            csv_write_field(l.rejects, l.src.columns[c]);
        }
        fputc('\n', l.rejects);
    }

    const char *params[] = {l.campaign_id, options->actor};
    PGresult *result = NULL;
    r = db_query(db,
                 "INSERT INTO crier.list_load (campaign_id, source, rows_read, loaded, rejected,"
                 " contacts_dropped, loaded_by) VALUES ($1, '', 0, 0, 0, 0, $2) RETURNING id",
                 2, params, &result);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        goto fail;
    }
    snprintf(l.load_id, sizeof(l.load_id), "%s", PQgetvalue(result, 0, 0));
    PQclear(result);
    {
        char *source = source_label(options);
        const char *p2[] = {l.load_id, source};
        r = db_exec(db, "UPDATE crier.list_load SET source = $2 WHERE id = $1", 2, p2);
        free(source);
        if (r < 0) {
            snprintf(err, err_size, "%s", db->error);
            goto fail;
        }
    }

    while ((r = source_next(&l.src, err, err_size)) > 0) {
        l.result.rows++;
        r = load_row(&l);
        if (r < 0) {
            if (r == -EIO && l.rejects && ferror(l.rejects))
                snprintf(err, err_size, "%s: write error", reject_tmp);
            else
                snprintf(err, err_size, "%s", db->error);
            goto fail;
        }
        show_progress(&l, false);
    }
    if (r < 0)
        goto fail;
    show_progress(&l, true);
    r = copy_notices(&l);
    if (r == 0)
        r = partitions_attach(&l);
    if (r == 0)
        r = load_finish(&l, sha[0] ? sha : NULL);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        goto fail;
    }
    if (l.rejects) {
        if (fflush(l.rejects) != 0 || fsync(fileno(l.rejects)) != 0 || ferror(l.rejects)) {
            snprintf(err, err_size, "%s: %s", reject_tmp, strerror(errno));
            r = -EIO;
            goto fail;
        }
    }
    r = db_commit(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        goto fail;
    }
    if (l.rejects) {
        fclose(l.rejects);
        l.rejects = NULL;
        if (rename(reject_tmp, options->reject_path) != 0 && diag)
            fprintf(diag, "crier: the load committed, but %s could not be renamed to %s: %s\n",
                    reject_tmp, options->reject_path, strerror(errno));
    }
    l.result.load_id = strtoll(l.load_id, NULL, 10);
    *ret_result = l.result;
    r = 0;
    goto out;
fail:
    if (l.options->progress)
        fputc('\n', stderr);
    db_rollback(db);
    if (l.rejects) {
        fclose(l.rejects);
        l.rejects = NULL;
        unlink(reject_tmp);
    }
out:
    source_close(&l.src);
    campaign_free(l.campaign);
    ref_set_clear(&l.refs);
    if (l.recipients_open) {
        PQputCopyEnd(db->conn, "load failed");
        PGresult *pending;
        while ((pending = PQgetResult(db->conn)) != NULL)
            PQclear(pending);
    }
    if (l.notice_spool)
        fclose(l.notice_spool);
    free(l.recipients.data);
    free(l.vars.data);
    free(l.copy_recipients);
    free(l.copy_notices);
    free(l.notices.data);
    free(l.is_field);
    free(reject_tmp);
    return r;
}
