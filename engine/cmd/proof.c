/*
 * proof.c - renders sample notices of a campaign to files, exactly as the channels would
 * render them, so that legal can review every jurisdiction's wording before the start.
 *
 * Never sends and never changes a notice: it only reads.
 */
#include "crier/proof.h"
#include "crier/campaign.h"
#include "crier/channel.h"
#include "crier/crier.h"
#include "crier/render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* strv_contains - is s one of the count strings at v? */
static bool strv_contains(const char *const *v, size_t count, const char *s)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static int write_file(const char *path, const char *bytes, FILE *diag)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputs(bytes, f) == EOF || fclose(f) != 0) {
        fprintf(diag, "%s: %s\n", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

/* proof_print - the notice as its channel prints or transmits it (the letter's PDF, the
 * fax's PDF), byte for byte what the channel would make today, into
 * DIR/REGION-REF-<proof_print_file>. 1 when written, -1 on failure (said on diag). */
static int proof_print(const struct crier_config *config, const struct crier_notice *n,
                       const struct crier_channel_ops *ops, const char *stem, FILE *report,
                       FILE *diag)
{
    char err[512] = "";
    unsigned char *pdf = NULL;
    size_t len = 0;
    char *path = xasprintf("%s-%s", stem, ops->proof_print_file);
    int r = ops->proof_print(config, n, &pdf, &len, err, sizeof(err));
    FILE *f = NULL;
    if (r < 0)
        fprintf(diag, "%s: %s\n", path, err[0] ? err : strerror(-r));
    else if ((f = fopen(path, "wb")) == NULL || fwrite(pdf, 1, len, f) != len || fclose(f) != 0)
        fprintf(diag, "%s: %s\n", path, strerror(errno));
    else
        fprintf(report, "%s\n", path);
    int written = r == 0 && f != NULL ? 1 : -1;
    free(pdf);
    free(path);
    return written;
}

/* The first $2 recipients of each region of campaign $1, as notices, regions in order. */
static const char samples_sql[] = "SELECT " NOTICE_COLUMNS(
    "n", "r") " FROM (SELECT *, row_number() OVER (PARTITION BY"
              " upper(coalesce(region, '')) ORDER BY seq) AS sample FROM crier.recipient"
              " WHERE campaign_id = $1) r JOIN crier.notice n"
              " ON n.campaign_id = r.campaign_id AND n.recipient_seq = r.seq"
              " WHERE r.sample <= $2 ORDER BY upper(coalesce(r.region, '')), r.seq";

/* One proof run: where its files go, and what it has written and failed so far. */
struct proof_run {
    const struct crier_config *config;
    const char *out_dir;
    FILE *report, *diag;
    int failures, written;
};

/* proof_text - the notice as its channel composes it (proof_file: the message, the letter's
 * body) into STEM-<proof_file>; a failure is said on diag and counted. */
static void proof_text(struct proof_run *run, const struct crier_notice *n,
                       const struct crier_channel_ops *ops, const char *stem)
{
    char err[512] = "";
    char *bytes = NULL;
    size_t len;
    char *path = xasprintf("%s-%s", stem, ops->proof_file);
    int r = ops->proof(run->config, n, &bytes, &len, err, sizeof(err));
    if (r < 0) {
        fprintf(run->diag, "%s: %s\n", path, err);
        run->failures++;
    } else if (write_file(path, bytes, run->diag) < 0) {
        run->failures++;
    } else {
        fprintf(run->report, "%s\n", path);
        run->written++;
    }
    free(bytes);
    free(path);
}

/* proof_notice - one sample's proofs, DIR/REGION-REF-*: for each channel of the policy that
 * can reach it, what it prints or transmits, and its text once per proof file (two channels
 * may share one). */
static void proof_notice(struct proof_run *run, char **policy, const struct crier_notice *n)
{
    char region[16], ref[64];
    file_safe_name(n->address[3], region, sizeof(region));
    file_safe_name(n->ref, ref, sizeof(ref));
    char *stem = xasprintf("%s/%s-%s", run->out_dir, region, ref);
    const char *done[CHANNEL_COUNT] = {0}; /* the proof files written for this notice */
    size_t done_count = 0;
    for (char **p = policy; *p; p++) {
        enum crier_channel_id channel;
        if (channel_id_from_name(*p, &channel) < 0 || !channel_reachable(channel, n, NULL))
            continue;
        const struct crier_channel_ops *ops = channel_ops_by_id(channel);
        if (ops != NULL && ops->proof_print != NULL) {
            if (proof_print(run->config, n, ops, stem, run->report, run->diag) < 0)
                run->failures++;
            else
                run->written++;
        }
        if (ops == NULL || ops->proof == NULL || strv_contains(done, done_count, ops->proof_file))
            continue;
        done[done_count++] = ops->proof_file;
        proof_text(run, n, ops, stem);
    }
    free(stem);
}

/* proof_samples - the first count recipients of each region (samples_sql), each rendered
 * as a first attempt. */
static int proof_samples(struct crier_db *db, struct proof_run *run, const struct campaign *c,
                         struct render_campaign *render, int count)
{
    const char *params[] = {DB_NUM(c->id), DB_NUM(count)};
    PGresult *result = NULL;
    int r = db_query(db, samples_sql, ARRAY_SIZE(params), params, &result);
    if (r < 0)
        return r;
    for (int row = 0; row < PQntuples(result); row++) {
        struct crier_notice n;
        notice_from_row(result, row, &n);
        n.campaign_name = c->name;
        n.attempt = n.channel_attempt = 1; /* a proof is rendered as a first attempt */
        render_attach(&n, render);
        proof_notice(run, c->policy, &n);
    }
    PQclear(result);
    return 0;
}

int proof_write(struct crier_db *db, const struct crier_config *config, const char *campaign,
                const char *out_dir, int count, FILE *report, FILE *diag)
{
    struct campaign *c = NULL;
    int r = campaign_get(db, campaign, false, &c);
    if (r < 0)
        return r;
    struct render_campaign *render = NULL;
    if (render_campaign_load(db, config, c->id, diag, &render) < 0) {
        r = -EINVAL;
    } else if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(diag, "%s: %s\n", out_dir, strerror(errno));
        r = -EIO;
    } else {
        struct proof_run run = {config, out_dir, report, diag, 0, 0};
        r = proof_samples(db, &run, c, render, count);
        if (r == 0)
            r = run.failures ? -EINVAL : run.written;
    }
    render_campaign_free(render);
    campaign_free(c);
    return r;
}
