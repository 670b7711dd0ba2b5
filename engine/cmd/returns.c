/*
 * returns.c - returned mail: a CSV of refs whose letters came back undeliverable.
 *
 * The whole file is one transaction: either every row is accounted for or nothing is
 * recorded. Each return is one dispatch-log row (event 'returned', mailed -> mailed), once
 * per mailing (the notice's attempt) and once per file (its SHA-256 is in the row): a file
 * ingested twice changes nothing, even after a letter was mailed again, and a letter mailed
 * again after a forwarding address and returned once more, in a new file, is recorded.
 *
 * A forwarding address (the print house's report of a USPS yellow label) is validated as a
 * load validates an address; a valid one amends the person and mails the letter again,
 * once per person (amend.c), in the same transaction; an invalid one is rejected alone.
 *
 * SECURITY: the file is untrusted input; values reach the database only as parameters.
 */
#include "crier/returns.h"
#include "crier/amend.h"
#include "crier/crier.h"
#include "crier/csv.h"
#include "crier/transition.h"
#include "crier/validate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

/* The forwarding address columns, in address field order (address1 .. country). */
static const char *const forward_names[] = {
    "forward_address1", "forward_address2",    "forward_city",
    "forward_region",   "forward_postal_code", "forward_country",
};

struct forwarding {
    int column[6]; /* file column of each forward_* name, -1 if absent */
    FILE *rejects;
};

static bool forward_given(const struct forwarding *fw, const struct csv_record *record)
{
    for (size_t i = 0; i < ARRAY_SIZE(forward_names); i++)
        if (field(record, fw->column[i]))
            return true;
    return false;
}

static void forward_reject(struct forwarding *fw, const struct csv_record *record,
                           const char *reason)
{
    if (fw->rejects == NULL)
        return;
    fprintf(fw->rejects, "line %lu,rejected,", record->line);
    csv_write_field(fw->rejects, reason);
    for (size_t c = 0; c < record->count; c++) {
        fputc(',', fw->rejects);
        csv_write_field(fw->rejects, record->fields[c]);
    }
    fputc('\n', fw->rejects);
}

/* forward - a returned letter's forwarding address: validated, then amend_forward(). */
static int forward(struct crier_db *db, struct forwarding *fw, const struct csv_record *record,
                   const char *path, const char *campaign, const char *ref, const char *actor,
                   FILE *diag, struct returns_result *result)
{
    struct recipient_input in = {{0}};
    in.field[FIELD_REF] = ref;
    in.field[FIELD_NAME] = "-";
    for (size_t i = 0; i < ARRAY_SIZE(forward_names); i++)
        in.field[FIELD_ADDRESS1 + i] = field(record, fw->column[i]);
    struct recipient_valid v;
    validate_recipient(&in, &v);
    if (!v.has_address) {
        const char *why = v.note_count ? v.notes[0] : "address: not mailable";
        fprintf(diag, "crier: %s:%lu: ref '%s': forwarding address rejected: %s\n", path,
                record->line, ref, why);
        forward_reject(fw, record, why);
        recipient_valid_clear(&v);
        result->forward_rejected++;
        return 0;
    }
    struct amend_contacts address = {.mailable = true};
    for (int f = FIELD_ADDRESS1; f <= FIELD_COUNTRY; f++)
        address.field[f] = v.field[f];
    char where[64], err[512] = "";
    snprintf(where, sizeof(where), "returns line %lu", record->line);
    int done = -1;
    int r = amend_forward(db, campaign, ref, &address, where, actor, &done, err, sizeof(err));
    recipient_valid_clear(&v);
    if (r < 0)
        return r;
    if (done == 1)
        result->forwarded++;
    else if (done == 0)
        result->forward_once++;
    else
        fprintf(diag, "crier: %s:%lu: ref '%s': not forwarded: %s\n", path, record->line, ref, err);
    return 0;
}

int returns_ingest(struct crier_db *db, const char *path, const char *campaign, const char *actor,
                   const char *reject_path, FILE *diag, struct returns_result *ret_result,
                   char *err, size_t err_size)
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
    struct forwarding fw = {0};
    bool forwarding = false;
    for (size_t i = 0; i < ARRAY_SIZE(forward_names); i++)
        forwarding |= (fw.column[i] = column_of(header, forward_names[i])) >= 0;
    char *reject_tmp = NULL;
    if (forwarding && reject_path) {
        reject_tmp = xasprintf("%s.tmp", reject_path);
        fw.rejects = fopen(reject_tmp, "w");
        if (fw.rejects == NULL) {
            snprintf(err, err_size, "%s: %s", reject_tmp, strerror(errno));
            free(reject_tmp);
            csv_reader_free(reader);
            return -EIO;
        }
        fputs("source_row,disposition,reason", fw.rejects);
        for (size_t c = 0; c < header->count; c++) {
            fputc(',', fw.rejects);
            csv_write_field(fw.rejects, header->fields[c]);
        }
        fputc('\n', fw.rejects);
    }
    /* the file's identity: the same file ingested again records nothing (standard input
     * has none: there, only a return of the same mailing is a duplicate) */
    char file_sha256[65] = "";
    if (strcmp(path, "-") != 0 && sha256_file_hex(path, file_sha256) < 0) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        csv_reader_free(reader);
        if (fw.rejects) {
            fclose(fw.rejects);
            unlink(reject_tmp);
            free(reject_tmp);
        }
        return -EIO;
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
                                     field(record, date_column), where,
                                     file_sha256[0] ? file_sha256 : NULL, actor, &outcome);
        if (r < 0) {
            snprintf(err, err_size, "%s:%lu: %s", path, record->line, db->error);
            break;
        }
        if ((outcome == RETURN_RECORDED || outcome == RETURN_ALREADY) &&
            forward_given(&fw, record)) {
            r = forward(db, &fw, record, path, in_campaign, ref, actor, diag, &result);
            if (r < 0) {
                snprintf(err, err_size, "%s:%lu: %s", path, record->line, db->error);
                break;
            }
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
    if (fw.rejects && (fclose(fw.rejects) != 0) && r >= 0) {
        snprintf(err, err_size, "%s: %s", reject_tmp, strerror(errno));
        r = -EIO;
    }
    if (reject_tmp) {
        if (r < 0 || rename(reject_tmp, reject_path) != 0)
            unlink(reject_tmp);
        free(reject_tmp);
    }
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
