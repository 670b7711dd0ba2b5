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

/* file_safe - a ref or region made safe for a file name. */
static int write_file(const char *path, const char *bytes, FILE *diag)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputs(bytes, f) == EOF || fclose(f) != 0) {
        fprintf(diag, "%s: %s\n", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

/* proof_pdf - the notice's letter as the mail channel prints it, or its fax as the fax
 * channel transmits it: the PDF itself, byte for byte what the channel would make today.
 * 1 when written, -1 on failure (said on diag). */
static int proof_pdf(const struct crier_config *config, const struct crier_notice *n,
                     enum crier_channel_id channel, const char *stem, FILE *report, FILE *diag)
{
    char err[512] = "";
    unsigned char *pdf = NULL;
    size_t len = 0;
    bool fax = channel == CHANNEL_FAX;
    char *path = xasprintf("%s-%s.pdf", stem, fax ? "fax" : "letter");
    int r = fax ? fax_compose(config, n, &pdf, &len, err, sizeof(err))
                : print_compose(config, n, &pdf, &len, err, sizeof(err));
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

int proof_write(struct crier_db *db, const struct crier_config *config, const char *campaign,
                const char *out_dir, int count, FILE *report, FILE *diag)
{
    struct campaign *c = NULL;
    int r = campaign_get(db, campaign, false, &c);
    if (r < 0)
        return r;
    struct render_campaign *render = NULL;
    r = render_campaign_load(db, config, c->id, diag, &render);
    if (r < 0) {
        campaign_free(c);
        return -EINVAL;
    }
    if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(diag, "%s: %s\n", out_dir, strerror(errno));
        render_campaign_free(render);
        campaign_free(c);
        return -EIO;
    }
    char id[32], limit[16];
    snprintf(id, sizeof(id), "%lld", (long long)c->id);
    snprintf(limit, sizeof(limit), "%d", count);
    const char *params[] = {id, limit};
    PGresult *result = NULL;
    r = db_query(db,
                 "SELECT n.id, n.id || '.' || n.token, r.ref, r.name, r.email, r.fax, r.address1,"
                 " r.address2, r.city, r.region, r.postal_code, r.country, r.mailable,"
                 " r.vars::text FROM (SELECT *, row_number() OVER (PARTITION BY"
                 " upper(coalesce(region, '')) ORDER BY seq) AS sample FROM crier.recipient"
                 " WHERE campaign_id = $1) r JOIN crier.notice n"
                 " ON n.campaign_id = r.campaign_id AND n.recipient_seq = r.seq"
                 " WHERE r.sample <= $2 ORDER BY upper(coalesce(r.region, '')), r.seq",
                 2, params, &result);
    if (r < 0) {
        render_campaign_free(render);
        campaign_free(c);
        return r;
    }
    int failures = 0, written = 0;
    for (int row = 0; row < PQntuples(result); row++) {
        const char *v[14];
        for (int k = 0; k < 14; k++)
            v[k] = PQgetisnull(result, row, k) ? NULL : PQgetvalue(result, row, k);
        struct crier_notice n = {
            .id = strtoll(v[0], NULL, 10),
            .campaign_id = c->id,
            .campaign_name = c->name,
            .token = v[1],
            .ref = v[2],
            .name = v[3],
            .email = v[4],
            .fax = v[5],
            .address = {v[6], v[7], v[8], v[9], v[10]},
            .country = v[11],
            .mailable = v[12] && strcmp(v[12], "t") == 0,
            .vars_json = v[13],
            .attempt = 1,
            .channel_attempt = 1,
            .render = render,
        };
        char region[16], ref[64];
        file_safe_name(n.address[3], region, sizeof(region));
        file_safe_name(n.ref, ref, sizeof(ref));
        bool letter_done = false;
        for (char **p = c->policy; *p; p++) {
            enum crier_channel_id channel;
            if (channel_id_from_name(*p, &channel) < 0 || !channel_reachable(channel, &n, NULL))
                continue;
            char err[512] = "";
            char *bytes = NULL, *path = NULL;
            size_t len;
            if (channel == CHANNEL_EMAIL) {
                path = xasprintf("%s/%s-%s-email.eml", out_dir, region, ref);
                r = email_compose(config, &n, &bytes, err, sizeof(err));
            } else if (channel == CHANNEL_FAX || channel == CHANNEL_MAIL) {
                char *stem = xasprintf("%s/%s-%s", out_dir, region, ref);
                if (proof_pdf(config, &n, channel, stem, report, diag) < 0)
                    failures++;
                else
                    written++;
                free(stem);
                if (letter_done)
                    continue;
                letter_done = true;
                path = xasprintf("%s/%s-%s-letter.md", out_dir, region, ref);
                r = notice_render(&n, "letter.md", false, &bytes, &len, err, sizeof(err));
            } else {
                continue;
            }
            if (r < 0) {
                fprintf(diag, "%s: %s\n", path, err);
                failures++;
            } else if (write_file(path, bytes, diag) < 0) {
                failures++;
            } else {
                fprintf(report, "%s\n", path);
                written++;
            }
            free(bytes);
            free(path);
        }
    }
    PQclear(result);
    render_campaign_free(render);
    campaign_free(c);
    if (failures)
        return -EINVAL;
    return written;
}
