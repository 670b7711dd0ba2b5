/*
 * campaign.c - campaigns and their lifecycle.
 *
 * Every change of a campaign's state is written to the dispatch log in the same
 * transaction. The campaign row is locked (FOR UPDATE) for the change, so a load, a start
 * and a cancel of one campaign never interleave.
 */
#include "crier/campaign.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/policy.h"
#include "crier/jsonout.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char **campaign_policy_from_array(const char *array_text)
{
    return db_array_parse(array_text);
}

/* name_valid - what the campaign.name CHECK allows, checked first for a plain message. */
static bool name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 63 || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

int campaign_create(struct crier_db *db, const struct campaign_create_options *options,
                    const char *actor, char *err, size_t err_size)
{
    if (!name_valid(options->name)) {
        snprintf(err, err_size,
                 "invalid campaign name '%s': names are 1-63 letters, digits, '.', '_' or '-',"
                 " starting with a letter or digit",
                 options->name);
        return -EINVAL;
    }
    if (str_empty(options->incident)) {
        snprintf(err, err_size, "the incident reference must not be empty");
        return -EINVAL;
    }
    char **policy = NULL;
    int r =
        policy_parse(options->policy ? options->policy : "email,fax,mail", &policy, err, err_size);
    if (r < 0)
        return r;
    /* the text[] literal; db_array quotes every element, so the channel "null" is not
     * stored as SQL NULL */
    char *array = db_array_of((const char *const *)policy, strv_length(policy));
    policy = strv_free(policy);

    const char *params[] = {options->name,
                            options->incident,
                            array,
                            options->templates,
                            options->meta_json ? options->meta_json : "{}",
                            actor};
    r = db_exec(db,
                "WITH c AS (INSERT INTO crier.campaign (name, incident, policy, templates, meta)"
                " VALUES ($1, $2, $3::text[], $4, $5::jsonb) RETURNING id, policy)"
                " INSERT INTO crier.dispatch_log (campaign_id, event, to_state, actor, detail)"
                " SELECT id, 'campaign', 'draft', $6, 'created with policy ' ||"
                " array_to_string(policy, ',') FROM c",
                6, params);
    free(array);
    if (r == -EEXIST) {
        snprintf(err, err_size, "a campaign named '%s' already exists", options->name);
    } else if (r == -EINVAL) {
        snprintf(err, err_size,
                 "invalid campaign: %s (names are 1-63 letters, digits, '.', '_' or '-', "
                 "starting with a letter or digit; the incident must not be empty)",
                 db->error);
    } else if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
    }
    return r;
}

int campaign_get(struct crier_db *db, const char *name, bool lock, struct campaign **ret_campaign)
{
    const char *params[] = {name};
    PGresult *result = NULL;
    int r = db_query(db,
                     lock ? "SELECT id, name, incident, policy, state, templates"
                            " FROM crier.campaign WHERE name = $1 FOR UPDATE"
                          : "SELECT id, name, incident, policy, state, templates"
                            " FROM crier.campaign WHERE name = $1",
                     1, params, &result);
    if (r < 0)
        return r;
    if (PQntuples(result) == 0) {
        PQclear(result);
        snprintf(db->error, sizeof(db->error), "no campaign named '%s'", name);
        return -ENOENT;
    }
    struct campaign *c = xcalloc(1, sizeof(*c));
    c->id = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    c->name = xstrdup(PQgetvalue(result, 0, 1));
    c->incident = xstrdup(PQgetvalue(result, 0, 2));
    c->policy = campaign_policy_from_array(PQgetvalue(result, 0, 3));
    c->state = xstrdup(PQgetvalue(result, 0, 4));
    c->templates = PQgetisnull(result, 0, 5) ? NULL : xstrdup(PQgetvalue(result, 0, 5));
    PQclear(result);
    *ret_campaign = c;
    return 0;
}

int campaign_row(struct crier_db *db, const char *sql, const char *name, const char *doing,
                 PGresult **ret_result, char *err, size_t err_size)
{
    const char *params[] = {name};
    PGresult *res = NULL;
    int r = db_query(db, sql, 1, params, &res);
    if (r < 0)
        return error_set(err, err_size, r, "%s%s%s", doing ? doing : "", doing ? ": " : "",
                         db->error);
    if (PQntuples(res) == 0) {
        PQclear(res);
        return error_set(err, err_size, -ENOENT, "no campaign named '%s'", name);
    }
    *ret_result = res;
    return 0;
}

struct campaign *campaign_free(struct campaign *c)
{
    if (c == NULL)
        return NULL;
    strv_free(c->policy);
    FREE_MANY(c->name, c->incident, c->state, c->templates);
    free(c);
    return NULL;
}

static const struct {
    const char *verb;
    const char *from[3]; /* states the action is allowed from */
    const char *to;
} actions[] = {
    [CAMPAIGN_START] = {"start", {"draft"}, "running"},
    [CAMPAIGN_PAUSE] = {"pause", {"running"}, "paused"},
    [CAMPAIGN_RESUME] = {"resume", {"paused"}, "running"},
    [CAMPAIGN_CANCEL] = {"cancel", {"draft", "running", "paused"}, "cancelled"},
};

static bool action_allowed(enum campaign_action action, const char *state)
{
    for (size_t i = 0; i < ARRAY_SIZE(actions[action].from); i++)
        if (actions[action].from[i] && strcmp(actions[action].from[i], state) == 0)
            return true;
    return false;
}

/* cancel_notices - every notice not yet handed to a channel becomes cancelled, logged. */
static int cancel_notices(struct crier_db *db, int64_t campaign_id, const char *actor,
                          long *ret_count)
{
    const char *params[] = {DB_NUM(campaign_id), actor};
    return db_query_long(
        db,
        "WITH c AS (UPDATE crier.notice n SET state = 'cancelled', updated_at = now()"
        " FROM crier.notice old WHERE old.id = n.id AND n.campaign_id = $1"
        " AND n.state IN ('ready', 'held')"
        " RETURNING n.id, n.campaign_id, n.recipient_seq, n.channel, n.attempt, old.state),"
        " l AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id, recipient_ref,"
        " channel, from_state, to_state, attempt, actor, detail)"
        " SELECT c.campaign_id, 'transition', c.id, r.ref, c.channel, c.state, 'cancelled',"
        " c.attempt, $2, 'campaign cancelled' FROM c JOIN crier.recipient r"
        " ON r.campaign_id = c.campaign_id AND r.seq = c.recipient_seq)"
        " SELECT count(*) FROM c",
        2, params, ret_count);
}

int campaign_transition(struct crier_db *db, const char *name, enum campaign_action action,
                        const char *actor, campaign_start_check check, void *check_data,
                        long *ret_affected, char *err, size_t err_size)
{
    struct campaign *c = NULL;
    long affected = 0;
    int r = db_begin(db);
    if (r < 0)
        goto fail;
    r = campaign_get(db, name, true, &c);
    if (r < 0)
        goto fail;
    if (!action_allowed(action, c->state)) {
        snprintf(err, err_size, "cannot %s campaign '%s': it is %s", actions[action].verb, name,
                 c->state);
        r = -EPERM;
        goto fail_quiet;
    }
    if (action == CAMPAIGN_START) {
        const char *params[] = {DB_NUM(c->id)};
        PGresult *result = NULL;
        r = db_query(db, "SELECT EXISTS (SELECT 1 FROM crier.notice WHERE campaign_id = $1)", 1,
                     params, &result);
        if (r < 0)
            goto fail;
        bool empty = strcmp(PQgetvalue(result, 0, 0), "f") == 0;
        PQclear(result);
        if (empty) {
            snprintf(err, err_size,
                     "cannot start campaign '%s': no recipients loaded (crier campaign load)",
                     name);
            r = -EPERM;
            goto fail_quiet;
        }
        if (check) {
            r = check(db, name, check_data);
            if (r < 0) {
                snprintf(err, err_size, "campaign %s not started: its templates need fixing", name);
                goto fail_quiet;
            }
        }
    }
    if (action == CAMPAIGN_CANCEL) {
        r = cancel_notices(db, c->id, actor, &affected);
        if (r < 0)
            goto fail;
    }
    const char *params[] = {DB_NUM(c->id), actions[action].to, actor, c->state,
                            actions[action].verb};
    r = db_exec(db,
                "WITH u AS (UPDATE crier.campaign SET state = $2,"
                " started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now())"
                "  ELSE started_at END,"
                " finished_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE finished_at END"
                " WHERE id = $1 RETURNING id)"
                " INSERT INTO crier.dispatch_log (campaign_id, event, from_state, to_state, actor,"
                " detail) SELECT id, 'campaign', $4, $2, $3, $5 FROM u",
                5, params);
    if (r < 0)
        goto fail;
    r = db_commit(db);
    if (r < 0)
        goto fail;
    campaign_free(c);
    if (ret_affected)
        *ret_affected = affected;
    return 0;
fail:
    snprintf(err, err_size, "%s", db->error);
fail_quiet:
    db_rollback(db);
    campaign_free(c);
    return r;
}

int campaign_complete_finished(struct crier_db *db, const char *actor, long *ret_count)
{
    const char *params[] = {actor};
    return db_query_long(
        db,
        "WITH done AS (UPDATE crier.campaign c SET state = 'completed', finished_at = now()"
        /* The tallies first (006_scale.sql): while they count an open notice the campaign
         * is not done, and nothing else is read. Only when they say none is open are the
         * notices themselves asked, one test per index: a tally never completes a campaign
         * on its own. (A single NOT EXISTS over the five states walked the queue past every
         * finished notice; even through notice_claim, the entries of notices claimed since
         * the last vacuum are passed before the first ready one.) CASE fixes the order. */
        " WHERE c.state = 'running' AND CASE WHEN EXISTS (SELECT 1 FROM crier.notice_tally t"
        "  WHERE t.campaign_id = c.id"
        "  AND t.state IN ('ready', 'held', 'sending', 'submitted', 'batched')"
        "  GROUP BY t.channel, t.state HAVING sum(t.n) <> 0) THEN false"
        " ELSE NOT EXISTS (SELECT 1 FROM crier.notice n WHERE n.campaign_id = c.id"
        "  AND n.state = 'ready')"
        " AND NOT EXISTS (SELECT 1 FROM crier.notice n WHERE n.campaign_id = c.id"
        "  AND n.state = 'sending')"
        " AND NOT EXISTS (SELECT 1 FROM crier.notice n WHERE n.campaign_id = c.id"
        "  AND n.state IN ('held', 'submitted', 'batched')) END"
        " RETURNING c.id),"
        " l AS (INSERT INTO crier.dispatch_log (campaign_id, event, from_state, to_state, actor,"
        " detail) SELECT id, 'campaign', 'running', 'completed', $1,"
        " 'every notice reached a final state' FROM done)"
        " SELECT count(*) FROM done",
        1, params, ret_count);
}

int campaign_list(struct crier_db *db, bool json, FILE *out)
{
    PGresult *result = NULL;
    int r = db_query(db,
                     "SELECT c.name, c.incident, c.state, array_to_string(c.policy, ','),"
                     " to_char(c.created_at, " DB_TIME_S "),"
                     /* the tallies (006_scale.sql), not a count of the notices: the
                      * console polls this, and it must not cost a campaign's size */
                     " (SELECT coalesce(sum(t.n), 0) FROM crier.notice_tally t"
                     "  WHERE t.campaign_id = c.id)"
                     " FROM crier.campaign c ORDER BY c.created_at, c.id",
                     0, NULL, &result);
    if (r < 0)
        return r;
    int rows = PQntuples(result);
    if (json) {
        json_t *array = json_array();
        for (int i = 0; i < rows; i++) {
            json_t *obj = json_object();
            json_object_set_new(obj, "name", json_string(PQgetvalue(result, i, 0)));
            json_object_set_new(obj, "incident", json_string(PQgetvalue(result, i, 1)));
            json_object_set_new(obj, "state", json_string(PQgetvalue(result, i, 2)));
            json_t *policy = json_array();
            char **names = campaign_policy_from_array(PQgetvalue(result, i, 3));
            for (char **p = names; *p; p++)
                json_array_append_new(policy, json_string(*p));
            strv_free(names);
            json_object_set_new(obj, "policy", policy);
            json_object_set_new(obj, "created_at", json_string(PQgetvalue(result, i, 4)));
            json_object_set_new(obj, "total",
                                json_integer(strtoll(PQgetvalue(result, i, 5), NULL, 10)));
            json_array_append_new(array, obj);
        }
        json_out(out, array);
    } else {
        fprintf(out, "%-24s %-16s %-10s %-16s %10s  %s\n", "NAME", "INCIDENT", "STATE", "POLICY",
                "NOTICES", "CREATED");
        for (int i = 0; i < rows; i++)
            fprintf(out, "%-24s %-16s %-10s %-16s %10s  %s\n", PQgetvalue(result, i, 0),
                    PQgetvalue(result, i, 1), PQgetvalue(result, i, 2), PQgetvalue(result, i, 3),
                    PQgetvalue(result, i, 5), PQgetvalue(result, i, 4));
    }
    PQclear(result);
    return 0;
}
