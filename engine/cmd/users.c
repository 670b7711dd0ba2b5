/*
 * users.c - `crier db roles` and `crier user add`.
 *
 * Roles belong to the PostgreSQL cluster: migration 002 creates crier_operator, crier_legal
 * and crier_auditor once, which needs CREATEROLE the first time; after that a login is
 * made a member of one of them. `db roles` says what the connected role can do about that,
 * `user add` does the one statement an administrator would otherwise write by hand.
 *
 * SECURITY: the new role's name is quoted as an identifier, its password never travels in
 * clear: it is hashed by libpq (PQencryptPasswordConn, the server's password_encryption)
 * and only the hash is quoted into CREATE ROLE, which takes no parameters. The password
 * comes from a file no one else may read or from the terminal, never from argv.
 */
#include "crier/users.h"
#include "crier/crier.h"
#include "crier/jsonout.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_MAX 1024

static const struct {
    const char *role, *name, *may;
} crier_roles[] = {
    {"operator", "crier_operator",
     "runs campaigns: create, load, start, pause, resume, cancel, reroute, crier run, batches"},
    {"legal", "crier_legal", "law-enforcement holds: place, lift, confirm; reads campaigns"},
    {"auditor", "crier_auditor", "reads everything (audit, reports); writes nothing"},
};

/* The connected role: superuser, CREATEROLE, CREATE on this database, the owner of schema
 * crier (NULL when there is none yet). */
static const char who_sql[] =
    "SELECT current_user, r.rolsuper, r.rolcreaterole,"
    " has_database_privilege(current_database(), 'CREATE'), current_database(),"
    " (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'crier')"
    " FROM pg_roles r WHERE r.rolname = current_user";

/* Each crier role: does it exist, and its members (text, and a JSON array). */
static const char roles_sql[] =
    "SELECT n, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = n),"
    " coalesce((SELECT string_agg(m.rolname, ', ' ORDER BY m.rolname) FROM pg_auth_members a"
    " JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"
    " WHERE g.rolname = n), ''),"
    " (SELECT coalesce(json_agg(m.rolname ORDER BY m.rolname), '[]') FROM pg_auth_members a"
    " JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"
    " WHERE g.rolname = n)"
    " FROM unnest(ARRAY['crier_operator', 'crier_legal', 'crier_auditor']) WITH ORDINALITY u(n, i)"
    " ORDER BY i";

static bool truth(const PGresult *result, int row, int column)
{
    return PQgetvalue(result, row, column)[0] == 't';
}

struct who {
    const char *user, *database, *schema_owner;
    bool super, createrole, create_db, roles_exist;
};

/* migrate_verdict - can this role run db migrate; why not in why. */
static bool migrate_verdict(const struct who *w, const char **why)
{
    if (w->schema_owner && !w->super && strcmp(w->schema_owner, w->user) != 0) {
        *why = "schema crier belongs to another role: run db migrate as its owner";
        return false;
    }
    if (!w->schema_owner && !w->super && !w->create_db) {
        *why = "no CREATE privilege on the database to create schema crier";
        return false;
    }
    if (!w->roles_exist && !w->super && !w->createrole) {
        *why = "the crier roles do not exist and this role lacks CREATEROLE: have a DBA run "
               "CREATE ROLE crier_operator NOLOGIN (and crier_legal, crier_auditor) first";
        return false;
    }
    *why = "";
    return true;
}

static void roles_text(const struct who *w, bool ok, const char *why, const PGresult *roles,
                       FILE *out)
{
    fprintf(out, "connected as %s to database %s%s\n", w->user, w->database,
            w->super ? " (superuser)" : "");
    fprintf(out, "db migrate needs:\n");
    fprintf(out, "  CREATE on the database, or to own schema crier: %s\n",
            w->super || (w->schema_owner ? strcmp(w->schema_owner, w->user) == 0 : w->create_db)
                ? "yes"
                : "NO");
    fprintf(out, "  CREATEROLE while the three roles do not exist: %s\n",
            w->roles_exist ? "not needed (they exist)"
                           : (w->super || w->createrole ? "yes" : "NO"));
    fprintf(out, "  so db migrate %s%s%s\n", ok ? "can run" : "cannot run: ", ok ? "" : why, "");
    fprintf(out, "user add needs CREATEROLE: %s\n", w->super || w->createrole ? "yes" : "NO");
    fprintf(out, "\n%-15s %-7s %-s\n", "ROLE", "EXISTS", "MAY / MEMBERS");
    for (int i = 0; i < PQntuples(roles); i++) {
        fprintf(out, "%-15s %-7s %s\n", PQgetvalue(roles, i, 0), truth(roles, i, 1) ? "yes" : "no",
                crier_roles[i].may);
        fprintf(out, "%-23s members: %s\n", "",
                PQgetvalue(roles, i, 2)[0] ? PQgetvalue(roles, i, 2) : "none");
    }
}

static void roles_json(const struct who *w, bool ok, const char *why, const PGresult *roles,
                       FILE *out)
{
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(roles); i++) {
        json_t *m = json_loads(PQgetvalue(roles, i, 3), 0, NULL);
        json_array_append_new(list, json_pack("{s:s, s:b, s:s, s:o*}", "role",
                                              PQgetvalue(roles, i, 0), "exists", truth(roles, i, 1),
                                              "may", crier_roles[i].may, "members", m));
    }
    json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:b, s:s?, s:b, s:s, s:b, s:o}", "user", w->user,
                          "database", w->database, "superuser", w->super, "createrole",
                          w->createrole, "create_on_database", w->create_db, "schema_owner",
                          w->schema_owner, "migrate_can_run", ok, "migrate_why_not", why,
                          "user_add_can_run", w->super || w->createrole, "roles", list);
    json_out(out, o);
}

int users_roles(struct crier_db *db, bool json, FILE *out, bool *ret_migrate_ok, char *err,
                size_t err_size)
{
    PGresult *me = NULL, *roles = NULL;
    int r = db_query(db, who_sql, 0, NULL, &me);
    if (r == 0 && PQntuples(me) != 1)
        r = -EIO;
    if (r == 0)
        r = db_query(db, roles_sql, 0, NULL, &roles);
    if (r < 0) {
        PQclear(me);
        return error_set(err, err_size, r, "%s", db->error);
    }
    struct who w = {
        .user = PQgetvalue(me, 0, 0),
        .super = truth(me, 0, 1),
        .createrole = truth(me, 0, 2),
        .create_db = truth(me, 0, 3),
        .database = PQgetvalue(me, 0, 4),
        .schema_owner = PQgetisnull(me, 0, 5) ? NULL : PQgetvalue(me, 0, 5),
        .roles_exist = true,
    };
    for (int i = 0; i < PQntuples(roles); i++)
        w.roles_exist &= truth(roles, i, 1);
    const char *why = "";
    bool ok = migrate_verdict(&w, &why);
    (json ? roles_json : roles_text)(&w, ok, why, roles, out);
    *ret_migrate_ok = ok;
    PQclear(me);
    PQclear(roles);
    return 0;
}

/* ---- user add ----------------------------------------------------------------------------- */

/* password_file - the first line of a file only its owner may read. */
static int password_file(const char *file, char **ret, char *err, size_t err_size)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return error_set(err, err_size, -e, "%s: %s", file, strerror(e));
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return error_set(err, err_size, -EPERM,
                         "%s is mode %04o: a password file must be closed to group and others "
                         "(chmod 600 %s)",
                         file, (unsigned)(st.st_mode & 07777), file);
    }
    char *buf = xcalloc(PASSWORD_MAX + 1, 1);
    ssize_t n = read(fd, buf, PASSWORD_MAX);
    close(fd);
    if (n < 0) {
        int e = errno;
        free(buf);
        return error_set(err, err_size, -e, "%s: %s", file, strerror(e));
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        free(buf);
        return error_set(err, err_size, -EINVAL, "%s: the first line is empty", file);
    }
    *ret = buf;
    return 0;
}

/* tty_line - one line from the terminal with echo off; NULL at end of input. */
static char *tty_line(FILE *tty, const char *prompt)
{
    struct termios saved, quiet;
    bool echo_off = tcgetattr(fileno(tty), &saved) == 0;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fputs(prompt, tty);
    fflush(tty);
    if (echo_off)
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    char *line = xcalloc(PASSWORD_MAX + 2, 1);
    bool got = fgets(line, PASSWORD_MAX + 2, tty) != NULL;
    if (echo_off)
        tcsetattr(fileno(tty), TCSAFLUSH, &saved);
    fputc('\n', tty);
    if (!got) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static int password_prompt(char **ret, char *err, size_t err_size)
{
    FILE *tty = fopen("/dev/tty", "r+e");
    if (tty == NULL)
        return error_set(err, err_size, -ENOTTY,
                         "no terminal to ask for the password on: give --password-file FILE");
    char *first = tty_line(tty, "password: ");
    char *again = first ? tty_line(tty, "again: ") : NULL;
    fclose(tty);
    int r = 0;
    if (first == NULL || again == NULL)
        r = error_set(err, err_size, -EINVAL, "no password given");
    else if (strcmp(first, again) != 0)
        r = error_set(err, err_size, -EINVAL, "the two passwords differ");
    else if (first[0] == '\0')
        r = error_set(err, err_size, -EINVAL, "the password is empty");
    free(again);
    if (r < 0) {
        free(first);
        return r;
    }
    *ret = first;
    return 0;
}

int users_password(const char *file, char **ret_password, char *err, size_t err_size)
{
    return file ? password_file(file, ret_password, err, err_size)
                : password_prompt(ret_password, err, err_size);
}

/* name_valid - a plain lower-case identifier: what `psql -U` and pg_hba.conf take unquoted. */
static bool name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63 || !(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z')))
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static const char *role_group(const char *role)
{
    for (size_t i = 0; i < ARRAY_SIZE(crier_roles); i++)
        if (strcmp(crier_roles[i].role, role) == 0)
            return crier_roles[i].name;
    return NULL;
}

int users_add(struct crier_db *db, const char *name, const char *role, const char *password,
              char *err, size_t err_size)
{
    const char *group = role_group(role);
    if (group == NULL)
        return error_set(err, err_size, -EINVAL,
                         "--role must be operator, legal or auditor, not '%s'", role);
    if (!name_valid(name))
        return error_set(err, err_size, -EINVAL,
                         "'%s' is not a plain role name (a-z, 0-9, _, not starting with a "
                         "digit, at most 63)",
                         name);
    const char *params[] = {name};
    int r = db_exists(db, "SELECT 1 FROM pg_roles WHERE rolname = $1", 1, params);
    if (r < 0)
        return error_set(err, err_size, r, "%s", db->error);
    if (r == 1)
        return error_set(err, err_size, -EEXIST,
                         "role %s exists already (to add it to %s: GRANT %s TO %s)", name, group,
                         group, name);
    char *hash = PQencryptPasswordConn(db->conn, password, name, NULL);
    if (hash == NULL)
        return error_set(err, err_size, -EIO, "hashing the password: %s", PQerrorMessage(db->conn));
    char *ident = PQescapeIdentifier(db->conn, name, strlen(name));
    char *literal = PQescapeLiteral(db->conn, hash, strlen(hash));
    PQfreemem(hash);
    char *sql = xasprintf("CREATE ROLE %s LOGIN PASSWORD %s IN ROLE %s", ident, literal, group);
    PQfreemem(ident);
    PQfreemem(literal);
    r = db_exec(db, sql, 0, NULL);
    free(sql);
    if (r < 0)
        return error_set(err, err_size, r, "%s%s", db->error,
                         r == -EACCES ? " (creating a login needs CREATEROLE: crier db roles)"
                                      : "");
    return 0;
}
