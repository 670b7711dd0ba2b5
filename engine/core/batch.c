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
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/log.h"
#include "crier/jsonout.h"

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

int batch_window_due(struct crier_db *db, int64_t campaign_id, const char *channel, int limit,
                     long window_seconds, bool *ret_due)
{
    const char *params[] = {DB_NUM(campaign_id), DB_NUM(limit), DB_NUM(window_seconds), channel};
    PGresult *result = NULL;
    /* both probes walk the claim index (campaign_id, channel, next_attempt_at, id) */
    int r = db_query(db,
                     "SELECT (SELECT count(*) FROM (SELECT 1 FROM crier.notice"
                     " WHERE campaign_id = $1 AND channel = $4 AND state = 'ready'"
                     " AND next_attempt_at <= now() LIMIT $2::int) x) >= $2::int"
                     " OR EXISTS (SELECT 1 FROM crier.notice WHERE campaign_id = $1"
                     " AND channel = $4 AND state = 'ready'"
                     " AND next_attempt_at <= now() - make_interval(secs => $3::double precision))",
                     4, params, &result);
    if (r < 0)
        return r;
    *ret_due = strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    PQclear(result);
    return 0;
}

/* ---- reconciliation ------------------------------------------------------------------ */

/* void_letters - batch id's letters still batched go back to ready (cancelled in a
 * cancelled campaign), each logged; *ret_count says how many. */
static int void_letters(struct crier_db *db, int64_t campaign_id, const char *id,
                        const char *reason, long *ret_count)
{
    char *detail = xasprintf("batch %s voided", id);
    const char *params[] = {DB_NUM(campaign_id), id, detail, reason, channel_batching()};
    int r = db_query_long(
        db,
        "WITH c AS (SELECT id, state FROM crier.campaign WHERE id = $1 FOR SHARE),"
        " v AS (UPDATE crier.notice n SET state = CASE WHEN c.state = 'cancelled'"
        " THEN 'cancelled' ELSE 'ready' END, transport_id = NULL, next_attempt_at = now(),"
        " updated_at = now() FROM c WHERE n.campaign_id = $1 AND n.channel = $5"
        " AND n.state = 'batched' AND n.transport_id = $2"
        " RETURNING n.id, n.campaign_id, n.recipient_seq, n.attempt, n.state),"
        " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
        " recipient_ref, channel, from_state, to_state, attempt, actor, detail, reason)"
        " SELECT v.campaign_id, 'transition', v.id, r.ref, $5, 'batched', v.state,"
        " v.attempt, session_user, $3, $4 FROM v JOIN crier.recipient r"
        " ON r.campaign_id = v.campaign_id AND r.seq = v.recipient_seq)"
        " SELECT count(*) FROM v",
        5, params, ret_count);
    free(detail);
    return r;
}

/* recorded - struct channel_recovery's: how much of a pending batch the log has. */
static int recorded(void *data, int64_t campaign_id, const char *batch, const int64_t *ids,
                    const int *attempts, size_t n, long *ret_recorded, long *ret_in_flight)
{
    struct crier_db *db = data;
    char like[BATCH_ID_MAX + 16];
    snprintf(like, sizeof(like), "batch %s %%", batch);
    struct db_array lists[2] = {0}; /* the ids and their attempts */
    for (size_t i = 0; i < n; i++) {
        db_array_add_long(&lists[0], ids[i]);
        db_array_add_long(&lists[1], attempts[i]);
    }
    const char *params[] = {DB_NUM(campaign_id), NULL, NULL, like};
    db_arrays_end(lists, 2, params + 1);
    PGresult *result = NULL;
    /* one snapshot: a record that commits meanwhile is seen either as batched rows or as
     * notices still sending, never as neither */
    int r = db_query(db,
                     "SELECT (SELECT count(DISTINCT l.notice_id) FROM crier.dispatch_log l"
                     " WHERE l.notice_id = ANY ($2::bigint[]) AND l.event = 'transition'"
                     " AND l.to_state = 'batched' AND l.detail LIKE $4),"
                     " (SELECT count(*) FROM crier.notice n, unnest($2::bigint[], $3::int[])"
                     " AS m(id, attempt) WHERE n.campaign_id = $1 AND n.id = m.id"
                     " AND n.state = 'sending' AND n.attempt = m.attempt)",
                     4, params, &result);
    db_arrays_free(lists, 2);
    if (r < 0)
        return r;
    *ret_recorded = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    *ret_in_flight = strtol(PQgetvalue(result, 0, 1), NULL, 10);
    PQclear(result);
    return 0;
}

/* take_back - struct channel_recovery's: a partly recorded batch's letters go back. */
static int take_back(void *data, int64_t campaign_id, const char *batch, const char *reason,
                     long *ret_count)
{
    return void_letters(data, campaign_id, batch, reason, ret_count);
}

/* orphaned - struct channel_recovery's: the operator hears of every orphaned batch. */
static void orphaned(void *data, const char *channel, const char *batch, long taken_back)
{
    log_warning("%s batch %s was not recorded: its files were renamed *.orphan "
                "(%ld recorded letters back to ready)",
                channel, batch, taken_back);
}

int batch_reconcile(struct crier_db *db, const struct crier_config *config, FILE *report,
                    long *ret_orphaned)
{
    const struct channel_recovery engine = {
        .data = db,
        .recorded = recorded,
        .take_back = take_back,
        .orphaned = orphaned,
    };
    return channel_recover_all(config, &engine, report, ret_orphaned);
}

/* ---- commands -------------------------------------------------------------------------- */

static int campaign_id_of(struct crier_db *db, const char *name, char out[32], char *err,
                          size_t err_size)
{
    PGresult *result = NULL;
    int r = campaign_row(db, "SELECT id FROM crier.campaign WHERE name = $1", name, NULL, &result,
                         err, err_size);
    if (r < 0)
        return r;
    snprintf(out, 32, "%s", PQgetvalue(result, 0, 0));
    PQclear(result);
    return 0;
}

/* The batches of a campaign, from the log: one row each. */
static const char list_sql[] =
    "WITH made AS (SELECT split_part(detail, ' ', 2) AS batch, min(at) AS created_at,"
    " count(*) AS letters, sum(split_part(detail, ' ', 6)::int) AS pages,"
    " min(split_part(detail, ' ', 10)) AS pdf_sha256 FROM crier.dispatch_log"
    " WHERE campaign_id = $1 AND event = 'transition' AND channel = $3"
    " AND to_state = 'batched' AND detail LIKE 'batch %' GROUP BY 1),"
    " later AS (SELECT split_part(detail, ' ', 2) AS batch,"
    " count(*) FILTER (WHERE to_state = 'mailed') AS mailed,"
    " count(*) FILTER (WHERE to_state <> 'mailed') AS voided,"
    " max(left(split_part(detail, ' ', 4), 10)) FILTER (WHERE to_state = 'mailed') AS mailed_on"
    " FROM crier.dispatch_log WHERE campaign_id = $1 AND event = 'transition'"
    " AND channel = $3 AND from_state = 'batched' AND detail LIKE 'batch %' GROUP BY 1)"
    " SELECT m.batch, to_char(m.created_at AT TIME ZONE 'UTC', " DB_TIME_S "),"
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
    const char *params[] = {id, "", channel_batching()};
    PGresult *result = NULL;
    r = db_query(db, list_sql, 3, params, &result);
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
        const char *files = spool_batch_state(config->mail.spool, batch);
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
        json_out(out, array);
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
            json_object_set_new(o, "files", json_string(spool_batch_state(config->mail.spool, id)));
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
                spool_batch_state(config->mail.spool, id));
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
    const char *params[] = {campaign, id, channel_batching()};
    PGresult *result = NULL;
    r = db_query(db, list_sql, 3, params, &result);
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
    const char *letter_params[] = {campaign, like, channel_batching()};
    r = db_query(db,
                 "SELECT split_part(l.detail, ' ', 4), l.recipient_ref, l.notice_id,"
                 " split_part(l.detail, ' ', 6), split_part(l.detail, ' ', 8), n.state,"
                 " coalesce(n.transport_id, ''), l.content_sha256"
                 " FROM crier.dispatch_log l JOIN crier.notice n"
                 " ON n.campaign_id = $1 AND n.id = l.notice_id"
                 " WHERE l.campaign_id = $1 AND l.event = 'transition' AND l.channel = $3"
                 " AND l.to_state = 'batched' AND l.detail LIKE $2"
                 " ORDER BY split_part(split_part(l.detail, ' ', 4), '/', 1)::int",
                 3, letter_params, &result);
    if (r < 0) {
        json_decref(o);
        return error_set(err, err_size, r, "%s", db->error);
    }
    show_letters(id, result, o, out);
    PQclear(result);
    if (o) {
        json_out(out, o);
    }
    return 0;
}

int batch_mark_mailed(struct crier_db *db, const struct crier_config *config, const char *text,
                      const char *date, const char *evidence, FILE *out, json_t *json, char *err,
                      size_t err_size)
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
    const char *files = spool_batch_state(config->mail.spool, id);
    if (strcmp(files, "orphan") == 0 || strcmp(files, "pending") == 0)
        return error_set(err, err_size, -EINVAL,
                         "batch %s's files are %s: they were never printable", id, files);
    char *detail = xasprintf("batch %s mailed %s%s%s", id, date, evidence ? ": " : "",
                             evidence ? evidence : "");
    const char *params[] = {campaign, id, detail, channel_batching()};
    PGresult *result = NULL;
    r = db_query(
        db,
        "WITH c AS (SELECT id FROM crier.campaign WHERE id = $1 FOR SHARE),"
        " m AS (UPDATE crier.notice n SET state = 'mailed', updated_at = now() FROM c"
        " WHERE n.campaign_id = $1 AND n.channel = $4 AND n.state = 'batched'"
        " AND n.transport_id = $2 RETURNING n.id, n.campaign_id, n.recipient_seq, n.attempt),"
        " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
        " recipient_ref, channel, from_state, to_state, attempt, actor, detail)"
        " SELECT m.campaign_id, 'transition', m.id, r.ref, $4, 'batched', 'mailed',"
        " m.attempt, session_user, $3 FROM m JOIN crier.recipient r"
        " ON r.campaign_id = m.campaign_id AND r.seq = m.recipient_seq)"
        " SELECT count(*) FROM m",
        4, params, &result);
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
    if (json) {
        json_object_set_new(json, "batch", json_string(id));
        json_object_set_new(json, "mailed", json_integer(count));
        json_object_set_new(json, "date", json_string(date));
        json_object_set_new(json, "evidence", evidence ? json_string(evidence) : json_null());
        return 0;
    }
    fprintf(out, "batch %s: %ld letters marked mailed on %s\n", id, count, date);
    return 0;
}

int batch_void(struct crier_db *db, const struct crier_config *config, const char *text,
               const char *reason, FILE *out, json_t *json, char *err, size_t err_size)
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
    bool renamed = false;
    if (!str_empty(config->mail.spool)) {
        r = batch_files_rename(config->mail.spool, id, "", ".void", NULL);
        if (r < 0)
            fprintf(out, "warning: cannot rename batch %s's files to *.void: %s\n", id,
                    strerror(-r));
        renamed = r >= 0;
    }
    if (json) {
        json_object_set_new(json, "batch", json_string(id));
        json_object_set_new(json, "voided", json_integer(count));
        json_object_set_new(json, "reason", json_string(reason));
        json_object_set_new(json, "files_renamed", json_boolean(renamed));
        return 0;
    }
    fprintf(out, "batch %s voided: %ld letters back to ready, to be printed in a new batch\n", id,
            count);
    return 0;
}
