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

/* What returns_ingest knows of the file it reads. */
struct returns_file {
    const char *path, *campaign, *actor;
    FILE *diag;
    int ref_column, campaign_column, reason_column, date_column;
    char sha256[65]; /* the file's identity, "" for standard input */
    struct forwarding fw;
    char *reject_tmp; /* the reject file, renamed to its name when all went well */
    struct returns_result result;
};

/* returns_header - the columns the header names; -EINVAL when ref (or campaign, without
 * --campaign) is not among them. */
static int returns_header(struct returns_file *f, const struct csv_record *header, char *err,
                          size_t err_size)
{
    f->ref_column = column_of(header, "ref");
    f->campaign_column = column_of(header, "campaign");
    f->reason_column = column_of(header, "reason");
    f->date_column = column_of(header, "returned_on");
    if (f->ref_column < 0 || (f->campaign_column < 0 && f->campaign == NULL)) {
        snprintf(err, err_size, "%s: the header needs a 'ref' column%s", f->path,
                 f->campaign_column < 0 && f->campaign == NULL
                     ? " and a 'campaign' column (or give --campaign NAME)"
                     : "");
        return -EINVAL;
    }
    return 0;
}

/* returns_rejects_open - with forwarding columns and a reject file: the file, written
 * beside its name, with the header. */
static int returns_rejects_open(struct returns_file *f, const struct csv_record *header,
                                const char *reject_path, char *err, size_t err_size)
{
    bool forwarding = false;
    for (size_t i = 0; i < ARRAY_SIZE(forward_names); i++)
        forwarding |= (f->fw.column[i] = column_of(header, forward_names[i])) >= 0;
    if (!forwarding || reject_path == NULL)
        return 0;
    f->reject_tmp = xasprintf("%s.tmp", reject_path);
    f->fw.rejects = fopen(f->reject_tmp, "w");
    if (f->fw.rejects == NULL) {
        snprintf(err, err_size, "%s: %s", f->reject_tmp, strerror(errno));
        return -EIO;
    }
    fputs("source_row,disposition,reason", f->fw.rejects);
    for (size_t c = 0; c < header->count; c++) {
        fputc(',', f->fw.rejects);
        csv_write_field(f->fw.rejects, header->fields[c]);
    }
    fputc('\n', f->fw.rejects);
    return 0;
}

/* returns_rejects_close - the reject file renamed into place when r says all went well,
 * else removed; r, or -EIO when closing it failed. */
static int returns_rejects_close(struct returns_file *f, const char *reject_path, int r, char *err,
                                 size_t err_size)
{
    if (f->fw.rejects) {
        /* ferror: a row stdio could not write earlier is gone even if this flush works */
        bool failed = ferror(f->fw.rejects) != 0;
        int saved = failed ? EIO : 0;
        if (fclose(f->fw.rejects) != 0 && !failed) {
            failed = true;
            saved = errno;
        }
        if (failed && r >= 0) {
            snprintf(err, err_size, "%s: %s", f->reject_tmp, strerror(saved));
            r = -EIO;
        }
    }
    f->fw.rejects = NULL;
    if (f->reject_tmp) {
        if (r < 0 || rename(f->reject_tmp, reject_path) != 0)
            unlink(f->reject_tmp);
        free(f->reject_tmp);
        f->reject_tmp = NULL;
    }
    return r;
}

/* returns_row - one returned letter: recorded (transition_record_return), its forwarding
 * address applied, and counted. < 0 stops the file. */
static int returns_row(struct crier_db *db, struct returns_file *f, const struct csv_record *record,
                       char *err, size_t err_size)
{
    struct returns_result *result = &f->result;
    result->rows++;
    const char *ref = field(record, f->ref_column);
    const char *in_campaign = field(record, f->campaign_column);
    if (in_campaign == NULL)
        in_campaign = f->campaign;
    char where[64];
    snprintf(where, sizeof(where), "%s line %lu", "returns file", record->line);
    if (ref == NULL || in_campaign == NULL) {
        fprintf(f->diag, "crier: %s:%lu: no ref%s\n", f->path, record->line,
                in_campaign ? "" : " or campaign");
        result->unknown++;
        return 0;
    }
    enum transition_return_result outcome = RETURN_RECORDED;
    int r = transition_record_return(db, in_campaign, ref, field(record, f->reason_column),
                                     field(record, f->date_column), where,
                                     f->sha256[0] ? f->sha256 : NULL, f->actor, &outcome);
    if (r == 0 && (outcome == RETURN_RECORDED || outcome == RETURN_ALREADY) &&
        forward_given(&f->fw, record))
        r = forward(db, &f->fw, record, f->path, in_campaign, ref, f->actor, f->diag, result);
    if (r < 0) {
        snprintf(err, err_size, "%s:%lu: %s", f->path, record->line, db->error);
        return r;
    }
    if (outcome == RETURN_RECORDED)
        result->recorded++;
    else if (outcome == RETURN_ALREADY)
        result->already++;
    else if (outcome == RETURN_UNKNOWN) {
        result->unknown++;
        fprintf(f->diag, "crier: %s:%lu: no ref '%s' in campaign '%s'\n", f->path, record->line,
                ref, in_campaign);
    } else {
        result->not_mailed++;
        fprintf(f->diag, "crier: %s:%lu: the letter to ref '%s' is not marked mailed\n", f->path,
                record->line, ref);
    }
    return 0;
}

/* returns_open - the file, its header read and checked, the reject file begun and the
 * file's identity taken; on failure, nothing is left open. */
static int returns_open(struct returns_file *f, const char *reject_path,
                        struct csv_reader **ret_reader, char *err, size_t err_size)
{
    struct csv_reader *reader = NULL;
    int r = csv_reader_open(f->path, &reader, err, err_size);
    if (r < 0)
        return r;
    const struct csv_record *header = NULL;
    r = csv_reader_next(reader, &header, err, err_size);
    if (r == 0) {
        snprintf(err, err_size, "%s: empty file (a header line is required)", f->path);
        r = -EINVAL;
    }
    if (r > 0)
        r = returns_header(f, header, err, err_size);
    if (r == 0)
        r = returns_rejects_open(f, header, reject_path, err, err_size);
    /* the file's identity: the same file ingested again records nothing (standard input
     * has none: there, only a return of the same mailing is a duplicate) */
    if (r == 0 && strcmp(f->path, "-") != 0 && sha256_file_hex(f->path, f->sha256) < 0) {
        snprintf(err, err_size, "%s: %s", f->path, strerror(errno));
        r = -EIO;
    }
    if (r < 0) {
        returns_rejects_close(f, reject_path, r, err, err_size);
        csv_reader_free(reader);
        return r;
    }
    *ret_reader = reader;
    return 0;
}

int returns_ingest(struct crier_db *db, const char *path, const char *campaign, const char *actor,
                   const char *reject_path, FILE *diag, struct returns_result *ret_result,
                   char *err, size_t err_size)
{
    struct returns_file f = {.path = path, .campaign = campaign, .actor = actor, .diag = diag};
    struct csv_reader *reader = NULL;
    int r = returns_open(&f, reject_path, &reader, err, err_size);
    if (r < 0)
        return r;
    r = db_begin(db);
    if (r < 0) {
        snprintf(err, err_size, "%s", db->error);
        returns_rejects_close(&f, reject_path, r, err, err_size);
        csv_reader_free(reader);
        return r;
    }
    const struct csv_record *record = NULL;
    while ((r = csv_reader_next(reader, &record, err, err_size)) > 0) {
        r = returns_row(db, &f, record, err, err_size);
        if (r < 0)
            break;
    }
    csv_reader_free(reader);
    r = returns_rejects_close(&f, reject_path, r, err, err_size);
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
    *ret_result = f.result;
    return 0;
}
