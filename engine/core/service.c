/*
 * service.c - which channels the live workers serve, the notices that wait because none
 * does, and `crier campaign reroute`, the one way to move them on.
 *
 * It must never move a notice by itself: a channel absent from one process's configuration
 * says nothing about the deployment (another host may serve it, or the worker that does may
 * be restarting), and moving people to the next channel is permanent. Every `crier run`
 * stamps crier.channel_service with its heartbeat (worker.c), which is how status can say
 * since when a channel has had no worker.
 */
#include "crier/service.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/db.h"
#include "crier/hold.h"
#include "crier/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* the running campaigns' (campaign, channel) pairs that no live worker serves, from the
 * policies and crier.worker, with the tallies' count of the pair's ready notices
 * (notice_tally: a few dozen rows whatever the campaign's size). In the usual case (every
 * channel served) there are none, and no notice is read. Until this was written so, one
 * statement joined every ready notice of the running campaigns to the (empty) pairs:
 * 40 s and more per call at 10,000,000, from status and from every crier run once a
 * minute (docs/benchmarks.md, the 10,000,000-person soak). The reason's time is UTC,
 * with the date when it is not today. */
#define WAITING_SQL                                                                                \
    "WITH live AS (SELECT DISTINCT unnest(channels) AS channel FROM crier.worker"                  \
    " WHERE heartbeat_at > now() - make_interval(secs => " SERVICE_LIVE_SECONDS ")),"              \
    " unserved AS (SELECT c.id, c.name, c.holds_placed, p.channel FROM crier.campaign c,"          \
    " unnest(c.policy) AS p(channel) WHERE c.state = 'running' AND ($1 = '' OR c.name = $1)"       \
    " AND p.channel NOT IN (SELECT channel FROM live))"                                            \
    " SELECT u.name, u.channel, u.id, u.holds_placed,"                                             \
    " (SELECT coalesce(sum(t.n), 0) FROM crier.notice_tally t WHERE t.campaign_id = u.id"          \
    " AND t.channel = u.channel AND t.state = 'ready'),"                                           \
    " to_char(s.last_served_at AT TIME ZONE 'UTC', " DB_TIME_S "),"                                \
    " to_char(s.last_served_at AT TIME ZONE 'UTC',"                                                \
    " CASE WHEN (s.last_served_at AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date"    \
    " THEN 'HH24:MI' ELSE 'YYYY-MM-DD HH24:MI' END)"                                               \
    " FROM unserved u LEFT JOIN crier.channel_service s ON s.channel = u.channel"                  \
    " ORDER BY u.id, u.channel"

/* waiting_count - the pair's waiting notices: the tallies' count of its ready notices, less,
 * with holds placed, those an active hold keeps (they wait for legal, not for a worker),
 * as status counts them (hold_held_by_channel: the region on the notice row, in the row).
 * Until then this asked crier.notice_held() of each ready notice of the channel: 30-40 s
 * at 1,000,000 under a region hold, from status and from every crier run once a minute
 * (docs/benchmarks.md, "`crier status` under a region hold"). */
static int waiting_count(struct crier_db *db, PGresult *pairs, int i, long long *ret_count)
{
    *ret_count = strtoll(PQgetvalue(pairs, i, 4), NULL, 10);
    if (strcmp(PQgetvalue(pairs, i, 3), "0") == 0 || *ret_count == 0)
        return 0;
    PGresult *held = NULL;
    int r = hold_held_by_channel(db, PQgetvalue(pairs, i, 2), &held);
    if (r < 0)
        return r;
    for (int row = 0; row < PQntuples(held); row++)
        if (strcmp(PQgetvalue(held, row, 0), PQgetvalue(pairs, i, 1)) == 0)
            *ret_count -= strtoll(PQgetvalue(held, row, 1), NULL, 10);
    PQclear(held);
    return 0;
}

int service_waiting(struct crier_db *db, const char *name, json_t **ret_waiting)
{
    const char *params[] = {name ? name : ""};
    PGresult *pairs = NULL;
    int r = db_query(db, WAITING_SQL, 1, params, &pairs);
    if (r < 0)
        return r;
    json_t *waiting = json_array();
    for (int i = 0; r == 0 && i < PQntuples(pairs); i++) {
        long long count = 0;
        r = waiting_count(db, pairs, i, &count);
        if (r < 0 || count == 0)
            continue;
        const char *channel = PQgetvalue(pairs, i, 1);
        bool served_once = !PQgetisnull(pairs, i, 5);
        char *reason = served_once ? xasprintf("no worker serves %s since %s UTC", channel,
                                               PQgetvalue(pairs, i, 6))
                                   : xasprintf("no worker has served %s yet", channel);
        json_t *row = json_object();
        json_object_set_new(row, "campaign", json_string(PQgetvalue(pairs, i, 0)));
        json_object_set_new(row, "channel", json_string(channel));
        json_object_set_new(row, "notices", json_integer(count));
        json_object_set_new(row, "since",
                            served_once ? json_string(PQgetvalue(pairs, i, 5)) : json_null());
        json_object_set_new(row, "reason", json_string(reason));
        json_array_append_new(waiting, row);
        free(reason);
    }
    PQclear(pairs);
    if (r < 0) {
        json_decref(waiting);
        return r;
    }
    *ret_waiting = waiting;
    return 0;
}

void service_waiting_text(const json_t *waiting, FILE *out)
{
    size_t i;
    json_t *row;
    json_array_foreach(waiting, i, row)
    {
        long long count = json_integer_value(json_object_get(row, "notices"));
        const char *campaign = json_string_value(json_object_get(row, "campaign"));
        const char *channel = json_string_value(json_object_get(row, "channel"));
        fprintf(out,
                "  waiting: %lld notice%s of %s on %s: %s (they wait; crier campaign reroute "
                "%s --from %s --to ... moves them)\n",
                count, count == 1 ? "" : "s", campaign, channel,
                json_string_value(json_object_get(row, "reason")), campaign, channel);
    }
}

int service_warn_unserved(struct crier_db *db, const char *const *served, long *ret_count)
{
    PGresult *result = NULL;
    /* each running campaign's policy channels, and whether a live worker serves each */
    int r = db_query(db,
                     "SELECT c.name, p.channel, EXISTS (SELECT 1 FROM crier.worker w"
                     " WHERE p.channel = ANY (w.channels) AND w.heartbeat_at > now() -"
                     " make_interval(secs => " SERVICE_LIVE_SECONDS "))"
                     " FROM crier.campaign c, unnest(c.policy) WITH ORDINALITY AS p(channel, i)"
                     " WHERE c.state = 'running' ORDER BY c.id, p.i",
                     0, NULL, &result);
    if (r < 0)
        return r;
    long count = 0;
    for (int i = 0; i < PQntuples(result); i++) {
        const char *campaign = PQgetvalue(result, i, 0);
        const char *channel = PQgetvalue(result, i, 1);
        bool mine = false;
        for (const char *const *s = served; *s && !mine; s++)
            mine = strcmp(*s, channel) == 0;
        if (mine)
            continue;
        bool elsewhere = strcmp(PQgetvalue(result, i, 2), "t") == 0;
        log_warning("campaign %s names %s in its policy, which this crier run does not serve: "
                    "%s; its %s notices wait (crier campaign reroute %s --from %s --to ... "
                    "moves them)",
                    campaign, channel,
                    elsewhere ? "another live worker serves it" : "no live worker serves it",
                    channel, campaign, channel);
        count++;
    }
    PQclear(result);
    *ret_count = count;
    return 0;
}

int service_unserved(struct crier_db *db, const char *name, char ***ret_channels)
{
    const char *params[] = {name};
    PGresult *result = NULL;
    int r = db_query(db,
                     "SELECT p.channel FROM crier.campaign c,"
                     " unnest(c.policy) WITH ORDINALITY AS p(channel, i) WHERE c.name = $1"
                     " AND NOT EXISTS (SELECT 1 FROM crier.worker w WHERE p.channel ="
                     " ANY (w.channels) AND w.heartbeat_at > now() -"
                     " make_interval(secs => " SERVICE_LIVE_SECONDS ")) ORDER BY p.i",
                     1, params, &result);
    if (r < 0)
        return r;
    int count = PQntuples(result);
    char **channels = xcalloc((size_t)count + 1, sizeof(char *));
    for (int i = 0; i < count; i++)
        channels[i] = xstrdup(PQgetvalue(result, i, 0));
    PQclear(result);
    *ret_channels = channels;
    return 0;
}

/* policy_position - index of channel in policy, or -1. */
static int policy_position(char **policy, const char *channel)
{
    for (int i = 0; policy[i]; i++)
        if (strcmp(policy[i], channel) == 0)
            return i;
    return -1;
}

/* contact_condition - the SQL test that recipient r has the contact channel uses (the ops
 * table's contact: the C test is its reachable op), "true" for a channel that needs none. */
static const char *contact_condition(const char *channel)
{
    const struct crier_channel_ops *ops = channel_ops_find(channel);
    switch (ops ? ops->contact : CONTACT_ANY) {
    case CONTACT_EMAIL:
        return "r.email IS NOT NULL";
    case CONTACT_FAX:
        return "r.fax IS NOT NULL";
    case CONTACT_POSTAL:
        return "r.mailable";
    case CONTACT_ANY:
        break;
    }
    return "true";
}

/* reroute_campaign - lock campaign name (FOR UPDATE: claims, FOR SHARE on the campaign, wait
 * until the reroute commits) and check that from and to are in its policy and that it is
 * not over. Its id in *ret_id (the caller frees) and to's place in the policy in *ret_index.
 * -ENOENT, -EINVAL, -EPERM with err set, or a database error (db->error). */
static int reroute_campaign(struct crier_db *db, const char *name, const char *from, const char *to,
                            char **ret_id, int *ret_index, char *err, size_t err_size)
{
    const char *params[] = {name};
    PGresult *result = NULL;
    int r = db_query(db, "SELECT id, state, policy FROM crier.campaign WHERE name = $1 FOR UPDATE",
                     1, params, &result);
    if (r < 0)
        return r;
    if (PQntuples(result) == 0) {
        PQclear(result);
        snprintf(err, err_size, "no campaign named '%s'", name);
        return -ENOENT;
    }
    const char *state = PQgetvalue(result, 0, 1);
    char **policy = campaign_policy_from_array(PQgetvalue(result, 0, 2));
    const char *bad = policy_position(policy, from) < 0 ? from
                      : policy_position(policy, to) < 0 ? to
                                                        : NULL;
    if (bad) {
        snprintf(err, err_size, "%s is not in the policy of campaign %s", bad, name);
        r = -EINVAL;
    } else if (strcmp(state, "completed") == 0 || strcmp(state, "cancelled") == 0) {
        snprintf(err, err_size, "campaign %s is %s: nothing waits", name, state);
        r = -EPERM;
    } else {
        *ret_id = xstrdup(PQgetvalue(result, 0, 0));
        *ret_index = policy_position(policy, to);
    }
    strv_free(policy);
    PQclear(result);
    return r;
}

/* reroute_move - move campaign id's notices ready on from that to reaches to to, each
 * with its dispatch-log row as any transition; how many moved and how many stay. */
static int reroute_move(struct crier_db *db, const char *id, const char *from, const char *to,
                        int index, const char *reason, const char *actor, long *ret_moved,
                        long *ret_left)
{
    const char *params[] = {id, from, to, reason, actor, DB_NUM(index)};
    char *sql =
        xasprintf("WITH moved AS (UPDATE crier.notice n SET channel = $3,"
                  " channel_index = $6::smallint, channel_attempt = 0, channel_started_at = NULL,"
                  " next_attempt_at = now(), updated_at = now(),"
                  " reasons = n.reasons || ($2 || ': rerouted to ' || $3 || ' by ' || $5 || ': '"
                  " || $4)"
                  " FROM crier.recipient r WHERE n.campaign_id = $1::bigint AND n.channel = $2"
                  " AND n.state = 'ready' AND r.campaign_id = n.campaign_id"
                  " AND r.seq = n.recipient_seq AND %s"
                  " RETURNING n.id, n.campaign_id, r.ref, n.attempt),"
                  " logged AS (INSERT INTO crier.dispatch_log (campaign_id, event, notice_id,"
                  " recipient_ref, channel, from_state, to_state, to_channel, attempt, actor,"
                  " detail, reason) SELECT campaign_id, 'transition', id, ref, $2, 'ready',"
                  " 'ready', $3, attempt, $5, 'crier campaign reroute',"
                  " 'rerouted by operator: ' || $4 FROM moved)"
                  " SELECT (SELECT count(*) FROM moved),"
                  " (SELECT count(*) FROM crier.notice WHERE campaign_id = $1::bigint"
                  " AND channel = $2 AND state = 'ready') - (SELECT count(*) FROM moved)",
                  contact_condition(to));
    PGresult *result = NULL;
    int r = db_query(db, sql, 6, params, &result);
    free(sql);
    if (r < 0)
        return r;
    *ret_moved = strtol(PQgetvalue(result, 0, 0), NULL, 10);
    *ret_left = strtol(PQgetvalue(result, 0, 1), NULL, 10);
    PQclear(result);
    return 0;
}

int service_reroute(struct crier_db *db, const char *name, const char *from, const char *to,
                    const char *reason, const char *actor, long *ret_moved, long *ret_left,
                    char *err, size_t err_size)
{
    if (strcmp(from, to) == 0) {
        snprintf(err, err_size, "--from and --to are both %s", from);
        return -EINVAL;
    }
    char *id = NULL;
    int index = 0;
    long moved = 0, left = 0;
    err[0] = '\0'; /* set by a refusal; a database error says its own below */
    int r = db_begin(db);
    if (r == 0)
        r = reroute_campaign(db, name, from, to, &id, &index, err, err_size);
    if (r == 0)
        r = reroute_move(db, id, from, to, index, reason, actor, &moved, &left);
    if (r == 0) {
        /* the operator's act, one campaign row beside the moves' own */
        char *detail = xasprintf("reroute %s -> %s: %ld notices moved, %ld left on %s (%s "
                                 "cannot reach them)",
                                 from, to, moved, left, from, to);
        const char *params[] = {id, actor, detail, reason};
        r = db_exec(db,
                    "INSERT INTO crier.dispatch_log (campaign_id, event, actor, detail, reason)"
                    " VALUES ($1::bigint, 'campaign', $2, $3, $4)",
                    4, params);
        free(detail);
    }
    if (r == 0)
        r = db_commit(db);
    if (r < 0 && err[0] == '\0')
        snprintf(err, err_size, "%s", db->error);
    if (r < 0)
        db_rollback(db);
    else {
        *ret_moved = moved;
        *ret_left = left;
    }
    free(id);
    return r;
}
