/*
 * returns.c - returned mail: a CSV of refs whose letters came back undeliverable.
 *
 * The whole file is one transaction: either every row is accounted for or nothing is
 * recorded. Each return is one dispatch-log row (event 'returned', mailed -> mailed) with
 * a dedupe key, so a file ingested twice changes nothing.
 *
 * SECURITY: the file is untrusted input; values reach the database only as parameters.
 */
#include "crier/returns.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/transition.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int column_of(const struct csv_record *header, const char *name)
{
    for (size_t i = 0; i < header->count; i++)
        if (strcasecmp(header->fields[i], name) == 0)
            return (int)i;
    return -1;
}

static const char *field(const struct csv_record *record, int column)
{
    if (column < 0 || (size_t)column >= record->count || str_empty(record->fields[column]))
        return NULL;
    return record->fields[column];
}

int returns_ingest(struct crier_db *db, const char *path, const char *campaign, const char *actor,
                   FILE *diag, struct returns_result *ret_result, char *err, size_t err_size)
{
    struct csv_reader *reader = NULL;
    int r = csv_reader_open(path, &reader, err, err_size);
    if (r < 0)
        return r;
    const struct csv_record *header = NULL;
    r = csv_reader_next(reader, &header, err, err_size);
    if (r <= 0) {
        if (r == 0)
            snprintf(err, err_size, "%s: empty file (a header line is required)", path);
        csv_reader_free(reader);
        return r == 0 ? -EINVAL : r;
    }
    int ref_column = column_of(header, "ref");
    int campaign_column = column_of(header, "campaign");
    int reason_column = column_of(header, "reason");
    int date_column = column_of(header, "returned_on");
    if (ref_column < 0 || (campaign_column < 0 && campaign == NULL)) {
        snprintf(err, err_size, "%s: the header needs a 'ref' column%s", path,
                 campaign_column < 0 && campaign == NULL
                     ? " and a 'campaign' column (or give --campaign NAME)"
                     : "");
        csv_reader_free(reader);
        return -EINVAL;
    }
    struct returns_result result = {0};
    r = db_begin(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        csv_reader_free(reader);
        return r;
    }
    const struct csv_record *record = NULL;
    while ((r = csv_reader_next(reader, &record, err, err_size)) > 0) {
        result.rows++;
        const char *ref = field(record, ref_column);
        const char *in_campaign = field(record, campaign_column);
        if (in_campaign == NULL)
            in_campaign = campaign;
        char where[64];
        snprintf(where, sizeof(where), "%s line %lu", "returns file", record->line);
        if (ref == NULL || in_campaign == NULL) {
            fprintf(diag, "crier: %s:%lu: no ref%s\n", path, record->line,
                    in_campaign ? "" : " or campaign");
            result.unknown++;
            continue;
        }
        enum transition_return_result outcome = RETURN_RECORDED;
        r = transition_record_return(db, in_campaign, ref, field(record, reason_column),
                                     field(record, date_column), where, actor, &outcome);
        if (r < 0) {
            snprintf(err, err_size, "%s:%lu: %s", path, record->line, db->error);
            break;
        }
        if (outcome == RETURN_RECORDED)
            result.recorded++;
        else if (outcome == RETURN_ALREADY)
            result.already++;
        else if (outcome == RETURN_UNKNOWN) {
            result.unknown++;
            fprintf(diag, "crier: %s:%lu: no ref '%s' in campaign '%s'\n", path, record->line, ref,
                    in_campaign);
        } else {
            result.not_mailed++;
            fprintf(diag, "crier: %s:%lu: the letter to ref '%s' is not marked mailed\n", path,
                    record->line, ref);
        }
    }
    csv_reader_free(reader);
    if (r < 0) {
        db_rollback(db);
        /* a refused role is not bad data: exit 77, as every other command */
        return r == -ECONNRESET || r == -EACCES ? r : -EINVAL;
    }
    r = db_commit(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        return r;
    }
    *ret_result = result;
    return 0;
}
