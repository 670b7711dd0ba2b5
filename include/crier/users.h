/*
 * users.h - `crier db roles` and `crier user add`: what `db migrate` needs of the role that
 * runs it, and logins in crier's three roles (crier_operator, crier_legal, crier_auditor,
 * engine/core/sql/002_holds.sql and 005_roles.sql) without hand-written SQL.
 */
#ifndef CRIER_USERS_H
#define CRIER_USERS_H

#include <stdbool.h>
#include <stdio.h>

#include "crier/db.h"

/*
 * users_roles - print, for the connected role, whether `db migrate` can run (CREATE on the
 * database or ownership of schema crier; CREATEROLE while the three roles do not exist),
 * whether `user add` can (CREATEROLE), and each crier role: does it exist, what it may do,
 * its members. Text, or one JSON object. *ret_migrate_ok says whether migrate can run.
 */
int users_roles(struct crier_db *db, bool json, FILE *out, bool *ret_migrate_ok, char *err,
                size_t err_size);

/*
 * users_password - the password for a new login: the first line of file (refused when its
 * group or others may read it, or when it is empty), or, with file NULL, asked twice on the
 * terminal with echo off (-ENOTTY when there is none). Never from the command line, where
 * ps(1) and the shell's history would show it. *ret_password is the caller's to free.
 */
int users_password(const char *file, char **ret_password, char *err, size_t err_size);

/*
 * users_add - CREATE ROLE name LOGIN in crier_<role> (operator, legal or auditor), with the
 * password hashed here (SCRAM, as the server asks) so that the clear text never reaches the
 * server or its statement log. -EINVAL for a bad name or role, -EEXIST when the role exists,
 * -EACCES when the connected role may not create roles (CREATEROLE).
 */
int users_add(struct crier_db *db, const char *name, const char *role, const char *password,
              char *err, size_t err_size);

#endif
