/*
 * spool.c - the mail channel's spool: batch ids, the moves of a batch's files, and the
 * recovery of *.pending batches after a crash (see spool.h and docs/mail.md).
 *
 * The recovery is the channel's half of a two-phase hand-off: print.c makes a batch durable
 * as *.pending before the engine records its letters batched, and makes it final in its
 * committed op after. A crash in between leaves *.pending files; only the database can say
 * whether the letters in them were recorded, so that question goes through the engine's
 * struct channel_recovery and this file never speaks SQL. Never prints a batch the database
 * does not know: a pending file is made final only when every letter in its manifest is
 * recorded accepted in that batch.
 */
#include "crier/spool.h"
#include "crier/crier.h"
#include "crier/csv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* files_each - each of batch id's files <hidden>B<ID>.<kind><from> that exists is renamed to
 * B<ID>.<kind><to>, or with to NULL removed; then the directory is fsync'd. *ret_count
 * counts the files moved or removed (may be NULL). */
static int files_each(const char *spool, const char *id, const char *hidden, const char *from,
                      const char *to, int *ret_count)
{
    int count = 0, r = 0;
    for (size_t k = 0; k < ARRAY_SIZE(batch_file_kinds); k++) {
        char *a = xasprintf("%s/%sB%s.%s%s", spool, hidden, id, batch_file_kinds[k], from);
        char *b = to ? xasprintf("%s/B%s.%s%s", spool, id, batch_file_kinds[k], to) : NULL;
        if ((b ? rename(a, b) : unlink(a)) == 0)
            count++;
        else if (errno != ENOENT && r == 0)
            r = -errno;
        free(a);
        free(b);
    }
    if (count > 0) {
        int s = dir_sync(spool);
        if (r == 0)
            r = s;
    }
    if (ret_count)
        *ret_count = count;
    return r;
}

int batch_files_rename(const char *spool, const char *id, const char *from, const char *to,
                       int *ret_renamed)
{
    return files_each(spool, id, "", from, to, ret_renamed);
}

const char *spool_batch_state(const char *spool, const char *id)
{
    static const char *const suffixes[][2] = {
        {"", "printable"}, {".pending", "pending"}, {".orphan", "orphan"}, {".void", "void"}};
    if (str_empty(spool))
        return "no spool";
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        char *path = xasprintf("%s/B%s.pdf%s", spool, id, suffixes[i][0]);
        bool there = access(path, F_OK) == 0;
        free(path);
        if (there)
            return suffixes[i][1];
    }
    return "missing";
}

/* ---- recovery ------------------------------------------------------------------------ */

/* The letters of one manifest. */
struct manifest {
    int64_t *ids;
    int *attempts;
    size_t count;
};

/* manifest_columns - where the notice_id and attempt columns are in the header. */
static int manifest_columns(const struct csv_record *header, size_t *ret_id, size_t *ret_attempt)
{
    *ret_id = *ret_attempt = SIZE_MAX;
    for (size_t c = 0; c < header->count; c++) {
        if (strcmp(header->fields[c], "notice_id") == 0)
            *ret_id = c;
        if (strcmp(header->fields[c], "attempt") == 0)
            *ret_attempt = c;
    }
    return *ret_id == SIZE_MAX || *ret_attempt == SIZE_MAX ? -EBADMSG : 0;
}

/* manifest_read - the notice ids and attempts of a manifest. */
static int manifest_read(const char *path, struct manifest *m)
{
    struct csv_reader *reader = NULL;
    char err[256];
    int r = csv_reader_open(path, &reader, err, sizeof(err));
    if (r < 0)
        return r;
    const struct csv_record *record;
    size_t id_column = SIZE_MAX, attempt_column = SIZE_MAX;
    bool header = true;
    while ((r = csv_reader_next(reader, &record, err, sizeof(err))) == 1) {
        if (header) {
            header = false;
            if ((r = manifest_columns(record, &id_column, &attempt_column)) < 0)
                break;
            continue;
        }
        if (record->count <= id_column || record->count <= attempt_column) {
            r = -EBADMSG;
            break;
        }
        m->ids = xreallocarray(m->ids, m->count + 1, sizeof(*m->ids));
        m->attempts = xreallocarray(m->attempts, m->count + 1, sizeof(*m->attempts));
        m->ids[m->count] = strtoll(record->fields[id_column], NULL, 10);
        m->attempts[m->count] = atoi(record->fields[attempt_column]);
        m->count++;
    }
    csv_reader_free(reader);
    return r < 0 ? r : 0;
}

/* recover_one - settle one pending batch (see spool_recover). */
static int recover_one(const char *spool, const char *channel,
                       const struct channel_recovery *engine, const char *id, FILE *report,
                       long *orphaned)
{
    int64_t campaign_id = 0;
    if (batch_id_parse(id, &campaign_id, NULL, NULL, NULL) < 0)
        return 0;
    char *path = xasprintf("%s/B%s.csv.pending", spool, id);
    struct manifest m = {0};
    int r = access(path, F_OK) == 0 ? manifest_read(path, &m) : -ENOENT;
    free(path);
    long recorded = 0, in_flight = 0;
    if (r == 0)
        r = engine->recorded(engine->data, campaign_id, id, m.ids, m.attempts, m.count, &recorded,
                             &in_flight);
    long letters = (long)m.count;
    free(m.ids);
    free(m.attempts);
    /* no manifest yet (a crash between the renames): the batch was never recorded */
    if (r < 0 && r != -ENOENT)
        return r;
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
    long taken_back = 0;
    if (recorded > 0) {
        r = engine->take_back(engine->data, campaign_id, id,
                              "print batch only partly recorded (leases lost while it was "
                              "assembled): its files were orphaned",
                              &taken_back);
        if (r < 0)
            return r;
    }
    (*orphaned)++;
    if (report)
        fprintf(report,
                "batch %s: not recorded in the database; files renamed *.orphan, never to be "
                "printed%s\n",
                id, taken_back ? " (its recorded letters went back to ready)" : "");
    if (engine->orphaned)
        engine->orphaned(engine->data, channel, id, taken_back);
    return 0;
}

/* batch_ids - the ids of the batches in spool with files named <prefix><ID>.<kind><suffix>
 * ("B", ".pending": pending; ".B", ".tmp": half-written), each once. */
static int batch_ids(const char *spool, const char *prefix, const char *suffix, char ***ret_ids,
                     size_t *ret_count)
{
    *ret_ids = NULL;
    *ret_count = 0;
    DIR *dir = opendir(spool);
    if (dir == NULL)
        return -errno;
    size_t prefix_len = strlen(prefix), suffix_len = strlen(suffix);
    char **ids = NULL;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        size_t len = strlen(name);
        if (len <= prefix_len + suffix_len + 1 || strncmp(name, prefix, prefix_len) != 0 ||
            strcmp(name + len - suffix_len, suffix) != 0)
            continue;
        const char *start = name + prefix_len;
        const char *dot = strchr(start, '.');
        char id[BATCH_ID_MAX];
        size_t id_len = (size_t)(dot - start);
        if (id_len == 0 || id_len >= sizeof(id))
            continue;
        memcpy(id, start, id_len);
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
    *ret_ids = ids;
    *ret_count = count;
    return 0;
}

/*
 * temps_one - a half-written batch (.B<ID>.*.tmp: a lane killed before its flush) goes
 * once no lane can be writing it: the notice that names the batch (its lowest, at that
 * attempt) is no longer being sent under that claim. A live lane's batch, even one whose
 * lane is gone but not yet reaped, has it 'sending' at that attempt, and is left. Nothing
 * of such a batch was handed over: only flush makes a batch's files *.pending, and its
 * letters ACCEPTED, so removing them loses nothing.
 */
static int temps_one(const char *spool, const struct channel_recovery *engine, const char *id,
                     FILE *report)
{
    int64_t campaign_id = 0, seq = 0;
    int attempt = 0;
    if (batch_id_parse(id, &campaign_id, &seq, &attempt, NULL) < 0)
        return 0;
    int64_t notice_id = notice_id_make(campaign_id, seq);
    long recorded = 0, in_flight = 0;
    int r = engine->recorded(engine->data, campaign_id, id, &notice_id, &attempt, 1, &recorded,
                             &in_flight);
    if (r < 0 || in_flight > 0)
        return r < 0 ? r : 0;
    int removed = 0;
    r = files_each(spool, id, ".", ".tmp", NULL, &removed);
    if (removed > 0 && report)
        fprintf(report,
                "batch %s: half-written by a lane that is gone (never printed); its %d "
                "temporary files removed\n",
                id, removed);
    return r;
}

static void ids_free(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

int spool_recover(const char *spool, const char *channel, const struct channel_recovery *engine,
                  FILE *report, long *ret_orphaned)
{
    long orphaned = 0;
    *ret_orphaned = 0;
    if (str_empty(spool))
        return 0;
    char **ids = NULL;
    size_t count = 0;
    int r = batch_ids(spool, "B", ".pending", &ids, &count);
    for (size_t i = 0; i < count && r == 0; i++)
        r = recover_one(spool, channel, engine, ids[i], report, &orphaned);
    ids_free(ids, count);
    /* then what lanes killed before their flush left half-written */
    if (r == 0 && (r = batch_ids(spool, ".B", ".tmp", &ids, &count)) == 0) {
        for (size_t i = 0; i < count && r == 0; i++)
            r = temps_one(spool, engine, ids[i], report);
        ids_free(ids, count);
    }
    *ret_orphaned = orphaned;
    return r;
}
