/* migrations.h - the schema migrations embedded from engine/core/sql/NNN_name.sql. */
#ifndef CRIER_MIGRATIONS_H
#define CRIER_MIGRATIONS_H

struct migration {
    unsigned version; /* NNN of the file name; applied in increasing order */
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migration_count;

#endif
