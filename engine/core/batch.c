/*
 * batch.c - print batches in the database and in the spool: the mail lane's batching
 * window, the reconciliation of *.pending files with what was recorded, and `crier batch
 * list|show|mark-mailed|void` (docs/mail.md).
 *
 * A batch has no table of its own: the dispatch log is its record. Each letter's
 * 'batched' transition row carries "batch ID letter SEQ/N pages P sheets S pdf_sha256 H"
 * in its detail and the letter's SHA-256, and the notice keeps the batch id as its
 * transport_id. Marking mailed and voiding are new log rows (batched -> mailed, batched ->
 * ready); no row about a batch is ever changed.
 *
 * Never prints a batch the database does not know: a pending file is made final only
 * when every letter in its manifest is recorded batched under that batch.
 */
#include "crier/batch.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const batch_file_kinds[3] = {"pdf", "sha256", "csv"};

int batch_id_parse(const char *text, int64_t *ret_campaign, int64_t *ret_seq, int *ret_attempt,
                   char canonical[BATCH_ID_MAX])
{
    if (text == NULL)
        return -EINVAL;
    if (text[0] == 'B' || text[0] == 'b')
        text++;
    long long campaign = 0, seq = 0;
    int attempt = 0, used = 0;
    if (sscanf(text, "%lld-%lld-%d%n", &campaign, &seq, &attempt, &used) != 3 ||
        text[used] != '\0' || campaign <= 0 || seq < 0 || attempt <= 0 || text[0] == '-')
        return -EINVAL;
    for (const char *p = text; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-'))
            return -EINVAL;
    if (ret_campaign)
        *ret_campaign = campaign;
    if (ret_seq)
        *ret_seq = seq;
    if (ret_attempt)
        *ret_attempt = attempt;
    if (canonical)
        snprintf(canonical, BATCH_ID_MAX, "%lld-%lld-%d", campaign, seq, attempt);
    return 0;
}

static int dir_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

int batch_files_rename(const char *spool, const char *id, const char *from, const char *to,
                       int *ret_renamed)
{
    int renamed = 0, r = 0;
    for (size_t k = 0; k < ARRAY_SIZE(batch_file_kinds); k++) {
        char *a = xasprintf("%s/B%s.%s%s", spool, id, batch_file_kinds[k], from);
        char *b = xasprintf("%s/B%s.%s%s", spool, id, batch_file_kinds[k], to);
        if (rename(a, b) == 0)
            renamed++;
        else if (errno != ENOENT && r == 0)
            r = -errno;
        free(a);
        free(b);
    }
    if (renamed > 0) {
        int s = dir_sync(spool);
        if (r == 0)
            r = s;
    }
    if (ret_renamed)
        *ret_renamed = renamed;
    return r;
}

/* file_state - where batch id's files are: "printable", "pending", "orphan", "void",
 * "missing" (or "no spool"). */
static const char *file_state(const struct crier_config *config, const char *id)
{
    static const char *const suffixes[][2] = {
        {"", "printable"}, {".pending", "pending"}, {".orphan", "orphan"}, {".void", "void"}};
    if (str_empty(config->mail.spool))
        return "no spool";
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        char *path = xasprintf("%s/B%s.pdf%s", config->mail.spool, id, suffixes[i][0]);
        bool there = access(path, F_OK) == 0;
        free(path);
        if (there)
            return suffixes[i][1];
    }
    return "missing";
}

int batch_window_due(struct crier_db *db, const struct crier_config *config, int64_t campaign_id,
                     bool *ret_due)
{
    char campaign[32], limit[16], window[32];
    snprintf(campaign, sizeof(campaign), "%lld", (long long)campaign_id);
    snprintf(limit, sizeof(limit), "%d", config->mail.letters_per_batch);
    snprintf(window, sizeof(window), "%ld", config->mail.batch_window_seconds);
    const char *params[] = {campaign, limit, window};
    PGresult *result = NULL;
    /* both probes walk the claim index (campaign_id, channel, next_attempt_at, id) */
    int r = db_query(db,
                     "SELECT (SELECT count(*) FROM (SELECT 1 FROM crier.notice"
                     " WHERE campaign_id = $1 AND channel = 'mail' AND state = 'ready'"
                     " AND next_attempt_at <= now() LIMIT $2::int) x) >= $2::int"
                     " OR EXISTS (SELECT 1 FROM crier.notice WHERE campaign_id = $1"
                     " AND channel = 'mail' AND state = 'ready'"
                     " AND next_attempt_at <= now() - make_interval(secs => $3::double precision))",
                     3, params, &result);
    if (r < 0)
        return r;
    *ret_due = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    return 0;
}

/* ---- reconciliation ------------------------------------------------------------------ */

/* manifest_read - the notice ids and attempts of a manifest, as array literals. */
static int manifest_read(const char *path, char **ret_ids, char **ret_attempts, long *ret_count)
{
    struct csv_reader *reader = NULL;
    char err[256];
    int r = csv_reader_open(path, &reader, err, sizeof(err));
    if (r < 0)
        return r;
    const struct csv_record *record;
    size_t id_column = SIZE_MAX, attempt_column = SIZE_MAX;
    char *ids = NULL, *attempts = NULL;
    size_t ids_len = 0, attempts_len = 0;
    FILE *id_out = open_memstream(&ids, &ids_len);
    FILE *attempt_out = open_memstream(&attempts, &attempts_len);
    long count = 0;
    bool header = true;
    while ((r = csv_reader_next(reader, &record, err, sizeof(err))) == 1) {
        if (header) {
            for (size_t c = 0; c < record->count; c++) {
                if (strcmp(record->fields[c], "notice_id") == 0)
                    id_column = c;
                if (strcmp(record->fields[c], "attempt") == 0)
                    attempt_column = c;
            }
            header = false;
            if (id_column == SIZE_MAX || attempt_column == SIZE_MAX) {
                r = -EBADMSG;
                break;
            }
            continue;
        }
        if (record->count <= id_column || record->count <= attempt_column) {
            r = -EBADMSG;
            break;
        }
        fprintf(id_out, "%s%lld", count ? "," : "{", strtoll(record->fields[id_column], NULL, 10));
        fprintf(attempt_out, "%s%d", count ? "," : "{", atoi(record->fields[attempt_column]));
        count++;
    }
    fputs(count ? "}" : "{}", id_out);
    fputs(count ? "}" : "{}", attempt_out);
    fclose(id_out);
    fclose(attempt_out);
    csv_reader_free(reader);
    if (r < 0) {
        free(ids);
        free(attempts);
        return r;
    }
    *ret_ids = ids;
    *ret_attempts = attempts;
    *ret_count = count;
    return 0;
}

/* void_letters - batch id's letters still batched go back to ready (cancelled in a
 * cancelled campaign), each logged; *ret_count says how many. */
static int void_letters(struct crier_db *db, int64_t campaign_id, const char *id,
                        const char *reason, long *ret_count)
{
    char campaign[32];
    snprintf(campaign, sizeof(campaign), "%lld", (long long)campaign_id);
    char *detail = xasprintf("batch %s voided", id);
    const char *params[] = {campaign, id, detail, reason};
    PGresult *result = NULL;
    int r =
        db_query(db,
                 "WITH c AS (SELECT id, state FROM crier.campaign WHERE id = $1 FOR SHARE),"
                 " v AS (UPDATE crier.notice n SET state = CASE WHEN c.state = 'cancelled'"
                 " THEN 'cancelled' ELSE 'ready' END, transport_id = NULL, next_attempt_at = now(),"
                 " updated_at = now() FROM c WHERE n.campaign_id = $1 AND n.channel = 'mail'"
                 " AND n.state = 'batched' AND n.transport_id = $2"
                 " RETURNING n.id, n.campaign_id, n.recipient_seq, n.attempt, n.state),"
                 " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
                 " recipient_ref, channel, from_state, to_state, attempt, actor, detail, reason)"
                 " SELECT v.campaign_id, 'transition', v.id, r.ref, 'mail', 'batched', v.state,"
                 " v.attempt, session_user, $3, $4 FROM v JOIN crier.recipient r"
                 " ON r.campaign_id = v.campaign_id AND r.seq = v.recipient_seq)"
                 " SELECT count(*) FROM v",
                 4, params, &result);
    free(detail);
    if (r < 0)
        return r;
    *ret_count = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return 0;
}

/* reconcile_one - settle one pending batch (see batch_reconcile). */
static int reconcile_one(struct crier_db *db, const struct crier_config *config, const char *id,
                         FILE *report, long *orphaned)
{
    const char *spool = config->mail.spool;
    int64_t campaign_id = 0;
    if (batch_id_parse(id, &campaign_id, NULL, NULL, NULL) < 0)
        return 0;
    char *manifest = xasprintf("%s/B%s.csv.pending", spool, id);
    char *ids = NULL, *attempts = NULL;
    long letters = 0;
    int r =
        access(manifest, F_OK) == 0 ? manifest_read(manifest, &ids, &attempts, &letters) : -ENOENT;
    free(manifest);
    long recorded = 0, in_flight = 0;
    if (r == 0) {
        char campaign[32], like[BATCH_ID_MAX + 16];
        snprintf(campaign, sizeof(campaign), "%lld", (long long)campaign_id);
        snprintf(like, sizeof(like), "batch %s %%", id);
        const char *params[] = {campaign, ids, attempts, like};
        PGresult *result = NULL;
        /* one snapshot: a record that commits meanwhile is seen either as batched rows or
         * as notices still sending, never as neither */
        r = db_query(db,
                     "SELECT (SELECT count(DISTINCT l.notice_id) FROM crier.dispatch_log l"
                     " WHERE l.notice_id = ANY ($2::bigint[]) AND l.event = 'transition'"
                     " AND l.to_state = 'batched' AND l.detail LIKE $4),"
                     " (SELECT count(*) FROM crier.notice n, unnest($2::bigint[], $3::int[])"
                     " AS m(id, attempt) WHERE n.campaign_id = $1 AND n.id = m.id"
                     " AND n.state = 'sending' AND n.attempt = m.attempt)",
                     4, params, &result);
        if (r == 0) {
            recorded = strtol(PQgetvalue(result, 0, 0), NULL, 10);
            in_flight = strtol(PQgetvalue(result, 0, 1), NULL, 10);
            PQclear(result);
        }
        free(ids);
        free(attempts);
        if (r < 0)
            return r;
    } else if (r != -ENOENT) {
        return r;
    }
    /* no manifest yet (a crash between the renames): the batch was never recorded */
    if (in_flight > 0)
        return 0; /* a lane is still assembling or recording it */
    if (letters > 0 && recorded == letters) {
        r = batch_files_rename(spool, id, ".pending", "", NULL);
        if (r == 0 && report)
            fprintf(report, "batch %s: recorded; its files are now final\n", id);
        return r;
    }
    r = batch_files_rename(spool, id, ".pending", ".orphan", NULL);
    if (r < 0)
        return r;
    long voided = 0;
    if (recorded > 0) {
        r = void_letters(db, campaign_id, id,
                         "print batch only partly recorded (leases lost while it was assembled):"
                         " its files were orphaned",
                         &voided);
        if (r < 0)
            return r;
    }
    (*orphaned)++;
    if (report)
        fprintf(report,
                "batch %s: not recorded in the database; files renamed *.orphan, never to be "
                "printed%s\n",
                id, voided ? " (its recorded letters went back to ready)" : "");
    log_warning("print batch %s was not recorded: its files were renamed *.orphan "
                "(%ld recorded letters back to ready)",
                id, voided);
    return 0;
}

int batch_reconcile(struct crier_db *db, const struct crier_config *config, FILE *report,
                    long *ret_orphaned)
{
    long orphaned = 0;
    if (ret_orphaned)
        *ret_orphaned = 0;
    if (str_empty(config->mail.spool))
        return 0;
    DIR *dir = opendir(config->mail.spool);
    if (dir == NULL)
        return -errno;
    char **ids = NULL;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        size_t len = strlen(name);
        if (name[0] != 'B' || len < 9 || strcmp(name + len - 8, ".pending") != 0)
            continue;
        const char *dot = strchr(name, '.');
        char id[BATCH_ID_MAX];
        size_t id_len = (size_t)(dot - name) - 1;
        if (id_len == 0 || id_len >= sizeof(id))
            continue;
        memcpy(id, name + 1, id_len);
        id[id_len] = '\0';
        bool seen = false;
        for (size_t i = 0; i < count && !seen; i++)
            seen = strcmp(ids[i], id) == 0;
        if (!seen) {
            ids = xreallocarray(ids, count + 1, sizeof(char *));
            ids[count++] = xstrdup(id);
        }
    }
    closedir(dir);
    int r = 0;
    for (size_t i = 0; i < count; i++) {
        if (r == 0)
            r = reconcile_one(db, config, ids[i], report, &orphaned);
        free(ids[i]);
    }
    free(ids);
    if (ret_orphaned)
        *ret_orphaned = orphaned;
    return r;
}

/* ---- commands -------------------------------------------------------------------------- */

static int campaign_id_of(struct crier_db *db, const char *name, char out[32], char *err,
                          size_t err_size)
{
    const char *params[] = {name};
    PGresult *result = NULL;
    int r = db_query(db, "SELECT id FROM crier.campaign WHERE name = $1", 1, params, &result);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    if (PQntuples(result) == 0) {
        PQclear(result);
        return error_set(err, err_size, -ENOENT, "no campaign named '%s'", name);
    }
    snprintf(out, 32, "%s", PQgetvalue(result, 0, 0));
    PQclear(result);
    return 0;
}

/* The batches of a campaign, from the log: one row each. */
static const char list_sql[] =
    "WITH made AS (SELECT split_part(detail, ' ', 2) AS batch, min(at) AS created_at,"
    " count(*) AS letters, sum(split_part(detail, ' ', 6)::int) AS pages,"
    " min(split_part(detail, ' ', 10)) AS pdf_sha256 FROM crier.dispatch_log"
    " WHERE campaign_id = $1 AND event = 'transition' AND channel = 'mail'"
    " AND to_state = 'batched' AND detail LIKE 'batch %' GROUP BY 1),"
    " later AS (SELECT split_part(detail, ' ', 2) AS batch,"
    " count(*) FILTER (WHERE to_state = 'mailed') AS mailed,"
    " count(*) FILTER (WHERE to_state <> 'mailed') AS voided,"
    " max(left(split_part(detail, ' ', 4), 10)) FILTER (WHERE to_state = 'mailed') AS mailed_on"
    " FROM crier.dispatch_log WHERE campaign_id = $1 AND event = 'transition'"
    " AND channel = 'mail' AND from_state = 'batched' AND detail LIKE 'batch %' GROUP BY 1)"
    " SELECT m.batch, to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " m.letters, m.pages, m.pdf_sha256, coalesce(l.mailed, 0), coalesce(l.voided, 0),"
    " coalesce(l.mailed_on, '') FROM made m LEFT JOIN later l USING (batch)"
    " WHERE ($2 = '' OR m.batch = $2) ORDER BY m.created_at, m.batch";

static const char *batch_state(long letters, long mailed, long voided)
{
    if (voided > 0)
        return mailed > 0 ? "partly voided" : "voided";
    if (mailed >= letters)
        return "mailed";
    if (mailed > 0)
        return "partly mailed";
    return "batched";
}

int batch_list(struct crier_db *db, const struct crier_config *config, const char *campaign,
               bool json, FILE *out, char *err, size_t err_size)
{
    char id[32];
    int r = campaign_id_of(db, campaign, id, err, err_size);
    if (r < 0)
        return r;
    long orphaned = 0;
    r = batch_reconcile(db, config, json ? stderr : out, &orphaned);
    if (r < 0)
        return error_set(err, err_size, r, "reconciling the spool %s: %s", config->mail.spool,
                         r == -EIO ? db->error : strerror(-r));
    const char *params[] = {id, ""};
    PGresult *result = NULL;
    r = db_query(db, list_sql, 2, params, &result);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    json_t *array = json ? json_array() : NULL;
    if (!json)
        fprintf(out, "%-16s %-20s %7s %6s %7s %7s %-14s %-9s\n", "BATCH", "CREATED", "LETTERS",
                "PAGES", "MAILED", "VOIDED", "STATE", "FILES");
    for (int i = 0; i < PQntuples(result); i++) {
        const char *batch = PQgetvalue(result, i, 0);
        long letters = strtol(PQgetvalue(result, i, 2), NULL, 10);
        long pages = strtol(PQgetvalue(result, i, 3), NULL, 10);
        long mailed = strtol(PQgetvalue(result, i, 5), NULL, 10);
        long voided = strtol(PQgetvalue(result, i, 6), NULL, 10);
        const char *state = batch_state(letters, mailed, voided);
        const char *files = file_state(config, batch);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "batch", json_string(batch));
            json_object_set_new(o, "created_at", json_string(PQgetvalue(result, i, 1)));
            json_object_set_new(o, "letters", json_integer(letters));
            json_object_set_new(o, "pages", json_integer(pages));
            json_object_set_new(o, "pdf_sha256", json_string(PQgetvalue(result, i, 4)));
            json_object_set_new(o, "mailed", json_integer(mailed));
            json_object_set_new(o, "voided", json_integer(voided));
            json_object_set_new(o, "state", json_string(state));
            json_object_set_new(o, "files", json_string(files));
            if (PQgetvalue(result, i, 7)[0])
                json_object_set_new(o, "mailed_on", json_string(PQgetvalue(result, i, 7)));
            json_array_append_new(array, o);
        } else {
            fprintf(out, "%-16s %-20s %7ld %6ld %7ld %7ld %-14s %-9s\n", batch,
                    PQgetvalue(result, i, 1), letters, pages, mailed, voided, state, files);
        }
    }
    PQclear(result);
    if (json) {
        json_dumpf(array, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(array);
    }
    return 0;
}

/* batch_find - the campaign of a batch id, checked against the log. */
static int batch_find(struct crier_db *db, const char *text, char id[BATCH_ID_MAX],
                      char campaign[32], char *err, size_t err_size)
{
    int64_t campaign_id = 0;
    if (batch_id_parse(text, &campaign_id, NULL, NULL, id) < 0)
        return error_set(err, err_size, -EINVAL,
                         "'%s' is not a batch id (CAMPAIGN-SEQ-ATTEMPT: crier batch list)", text);
    snprintf(campaign, 32, "%lld", (long long)campaign_id);
    return 0;
}

/* show_head - one batch's summary: text lines, or the members of the JSON object o. */
static void show_head(const struct crier_config *config, const char *id, PGresult *result,
                      json_t *o, FILE *out)
{
    long letters = strtol(PQgetvalue(result, 0, 2), NULL, 10);
    long mailed = strtol(PQgetvalue(result, 0, 5), NULL, 10);
    long voided = strtol(PQgetvalue(result, 0, 6), NULL, 10);
    const char *state = batch_state(letters, mailed, voided), *mailed_on = PQgetvalue(result, 0, 7);
    bool spool = !str_empty(config->mail.spool);
    if (o) {
        json_t *head = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "batch", id, "created_at",
                                 PQgetvalue(result, 0, 1), "letters", (json_int_t)letters, "pages",
                                 (json_int_t)strtol(PQgetvalue(result, 0, 3), NULL, 10),
                                 "pdf_sha256", PQgetvalue(result, 0, 4), "state", state);
        json_object_update(o, head);
        json_decref(head);
        if (mailed_on[0])
            json_object_set_new(o, "mailed_on", json_string(mailed_on));
        if (spool) {
            char *pdf = xasprintf("%s/B%s.pdf", config->mail.spool, id);
            json_object_set_new(o, "pdf", json_string(pdf));
            json_object_set_new(o, "files", json_string(file_state(config, id)));
            free(pdf);
        }
        return;
    }
    fprintf(out, "batch:      %s\n", id);
    fprintf(out, "created:    %s\n", PQgetvalue(result, 0, 1));
    fprintf(out, "letters:    %ld\n", letters);
    fprintf(out, "pages:      %s\n", PQgetvalue(result, 0, 3));
    fprintf(out, "pdf sha256: %s\n", PQgetvalue(result, 0, 4));
    fprintf(out, "state:      %s\n", state);
    if (mailed_on[0])
        fprintf(out, "mailed on:  %s\n", mailed_on);
    if (spool)
        fprintf(out, "files:      %s/B%s.pdf (%s)\n", config->mail.spool, id,
                file_state(config, id));
}

/* show_letters - the letters of a batch in print order: a table, or an array in o. */
static void show_letters(const char *id, PGresult *result, json_t *o, FILE *out)
{
    json_t *array = o ? json_array() : NULL;
    if (!o)
        fprintf(out, "\n%-9s %-20s %-20s %5s %-9s %-14s %s\n", "SEQUENCE", "REF", "NOTICE", "PAGES",
                "SHEETS", "NOW", "LETTER SHA-256");
    for (int i = 0; i < PQntuples(result); i++) {
        const char *now_batch = PQgetvalue(result, i, 6);
        bool moved = now_batch[0] && strcmp(now_batch, id) != 0; /* reprinted in another */
        char state[64];
        snprintf(state, sizeof(state), "%s%s%s", PQgetvalue(result, i, 5), moved ? " in " : "",
                 moved ? now_batch : "");
        if (array)
            json_array_append_new(
                array, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "sequence",
                                 PQgetvalue(result, i, 0), "ref", PQgetvalue(result, i, 1),
                                 "notice", PQgetvalue(result, i, 2), "pages",
                                 PQgetvalue(result, i, 3), "sheets", PQgetvalue(result, i, 4),
                                 "now", state, "letter_sha256", PQgetvalue(result, i, 7)));
        else
            fprintf(out, "%-9s %-20s %-20s %5s %-9s %-14s %s\n", PQgetvalue(result, i, 0),
                    PQgetvalue(result, i, 1), PQgetvalue(result, i, 2), PQgetvalue(result, i, 3),
                    PQgetvalue(result, i, 4), state, PQgetvalue(result, i, 7));
    }
    if (array)
        json_object_set_new(o, "letters_in_order", array);
}

int batch_show(struct crier_db *db, const struct crier_config *config, const char *text, bool json,
               FILE *out, char *err, size_t err_size)
{
    char id[BATCH_ID_MAX], campaign[32];
    int r = batch_find(db, text, id, campaign, err, err_size);
    if (r < 0)
        return r;
    (void)batch_reconcile(db, config, json ? stderr : out, NULL);
    const char *params[] = {campaign, id};
    PGresult *result = NULL;
    r = db_query(db, list_sql, 2, params, &result);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    if (PQntuples(result) == 0) {
        PQclear(result);
        return error_set(err, err_size, -ENOENT, "no batch %s is recorded", id);
    }
    json_t *o = json ? json_object() : NULL;
    show_head(config, id, result, o, out);
    PQclear(result);

    char like[BATCH_ID_MAX + 16];
    snprintf(like, sizeof(like), "batch %s %%", id);
    const char *letter_params[] = {campaign, like};
    r = db_query(db,
                 "SELECT split_part(l.detail, ' ', 4), l.recipient_ref, l.notice_id,"
                 " split_part(l.detail, ' ', 6), split_part(l.detail, ' ', 8), n.state,"
                 " coalesce(n.transport_id, ''), l.content_sha256"
                 " FROM crier.dispatch_log l JOIN crier.notice n"
                 " ON n.campaign_id = $1 AND n.id = l.notice_id"
                 " WHERE l.campaign_id = $1 AND l.event = 'transition' AND l.channel = 'mail'"
                 " AND l.to_state = 'batched' AND l.detail LIKE $2"
                 " ORDER BY split_part(split_part(l.detail, ' ', 4), '/', 1)::int",
                 2, letter_params, &result);
    if (r < 0) {
        json_decref(o);
        return error_set(err, err_size, r, "%s", db->error);
    }
    show_letters(id, result, o, out);
    PQclear(result);
    if (o) {
        json_dumpf(o, out, JSON_INDENT(2));
        fputc('\n', out);
        json_decref(o);
    }
    return 0;
}

int batch_mark_mailed(struct crier_db *db, const struct crier_config *config, const char *text,
                      const char *date, const char *evidence, FILE *out, char *err, size_t err_size)
{
    char id[BATCH_ID_MAX], campaign[32];
    int r = batch_find(db, text, id, campaign, err, err_size);
    if (r < 0)
        return r;
    if (!date_valid_past(date))
        return error_set(err, err_size, -EINVAL,
                         "--date must be the day of acceptance as YYYY-MM-DD, not in the future");
    if (evidence && strchr(evidence, '\n'))
        return error_set(err, err_size, -EINVAL, "--evidence must be one line");
    (void)batch_reconcile(db, config, out, NULL);
    const char *files = file_state(config, id);
    if (strcmp(files, "orphan") == 0 || strcmp(files, "pending") == 0)
        return error_set(err, err_size, -EINVAL,
                         "batch %s's files are %s: they were never printable", id, files);
    char *detail = xasprintf("batch %s mailed %s%s%s", id, date, evidence ? ": " : "",
                             evidence ? evidence : "");
    const char *params[] = {campaign, id, detail};
    PGresult *result = NULL;
    r = db_query(
        db,
        "WITH c AS (SELECT id FROM crier.campaign WHERE id = $1 FOR SHARE),"
        " m AS (UPDATE crier.notice n SET state = 'mailed', updated_at = now() FROM c"
        " WHERE n.campaign_id = $1 AND n.channel = 'mail' AND n.state = 'batched'"
        " AND n.transport_id = $2 RETURNING n.id, n.campaign_id, n.recipient_seq, n.attempt),"
        " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
        " recipient_ref, channel, from_state, to_state, attempt, actor, detail)"
        " SELECT m.campaign_id, 'transition', m.id, r.ref, 'mail', 'batched', 'mailed',"
        " m.attempt, session_user, $3 FROM m JOIN crier.recipient r"
        " ON r.campaign_id = m.campaign_id AND r.seq = m.recipient_seq)"
        " SELECT count(*) FROM m",
        3, params, &result);
    free(detail);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    long count = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    if (count == 0)
        return error_set(err, err_size, -EALREADY,
                         "batch %s has no letter waiting to be mailed (unknown, already mailed "
                         "or voided: crier batch show %s)",
                         id, id);
    fprintf(out, "batch %s: %ld letters marked mailed on %s\n", id, count, date);
    return 0;
}

int batch_void(struct crier_db *db, const struct crier_config *config, const char *text,
               const char *reason, FILE *out, char *err, size_t err_size)
{
    char id[BATCH_ID_MAX], campaign[32];
    int r = batch_find(db, text, id, campaign, err, err_size);
    if (r < 0)
        return r;
    if (str_empty(reason) || strchr(reason, '\n'))
        return error_set(err, err_size, -EINVAL, "--reason TEXT is required (one line)");
    (void)batch_reconcile(db, config, out, NULL);
    long count = 0;
    r = void_letters(db, strtoll(campaign, NULL, 10), id, reason, &count);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    if (count == 0)
        return error_set(err, err_size, -EALREADY,
                         "batch %s has no letter left to void (unknown, mailed or voided: crier "
                         "batch show %s)",
                         id, id);
    /* the spoiled run's files must never be printed again */
    if (!str_empty(config->mail.spool)) {
        r = batch_files_rename(config->mail.spool, id, "", ".void", NULL);
        if (r < 0)
            fprintf(out, "warning: cannot rename batch %s's files to *.void: %s\n", id,
                    strerror(-r));
    }
    fprintf(out, "batch %s voided: %ld letters back to ready, to be printed in a new batch\n", id,
            count);
    return 0;
}
