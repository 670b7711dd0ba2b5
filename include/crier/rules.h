/*
 * rules.h - the jurisdiction rules table (config/jurisdictions.yaml, docs/jurisdictions.md):
 * whom to tell, by when, per US state and territory, per federal regime a campaign declares,
 * and per foreign regime chosen by the person's country. Loaded and checked here; the report
 * (and later the regulator packet and the template checks) read it.
 *
 * The table has no defaults: a field the sources do not give is "unknown", and every
 * question asked of an unknown field answers RULES_UNKNOWN, never "not required".
 */
#ifndef CRIER_RULES_H
#define CRIER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A threshold is always an explicit comparison: "500 or more" is not "more than 500". */
enum rules_comparison {
    COMPARE_UNKNOWN,   /* the table does not know */
    COMPARE_NONE,      /* the law requires no such notice */
    COMPARE_ANY,       /* any number (one or more) */
    COMPARE_AT_LEAST,  /* "N or more" */
    COMPARE_MORE_THAN, /* "more than N" */
};

struct rules_threshold {
    enum rules_comparison comparison;
    long count; /* N of AT_LEAST and MORE_THAN */
};

enum rules_unit {
    PERIOD_UNKNOWN,
    PERIOD_DAYS,
    PERIOD_BUSINESS_DAYS, /* Monday to Friday; public holidays are not known to crier */
    PERIOD_HOURS,
    PERIOD_NO_FIXED_COUNT, /* "without unreasonable delay" and its kin: text says which */
};

struct rules_period {
    enum rules_unit unit;
    long amount; /* days, business days or hours */
    char *text;  /* as written in the table */
};

/* the event a deadline runs from */
enum rules_event {
    EVENT_UNKNOWN,
    EVENT_DISCOVERY,
    EVENT_DETERMINATION,
    EVENT_CONFIRMATION,
    EVENT_DETECTION,
    EVENT_AWARENESS,
    EVENT_INDIVIDUAL_NOTICE, /* the notices to the people went out */
    EVENT_CLEARANCE,         /* law enforcement said notice no longer impedes */
};

/* what the table says about one notice for a given count */
enum rules_verdict {
    VERDICT_UNKNOWN,      /* unknown — check counsel */
    VERDICT_NOT_REQUIRED, /* the count is below the threshold, or the law requires none */
    VERDICT_REQUIRED,
    VERDICT_CONDITIONAL, /* at or above the threshold, but due only when a condition holds */
};

enum rules_list_state { LIST_UNKNOWN, LIST_NONE, LIST_GIVEN };

struct rules_regulator {
    char *name;
    struct rules_threshold threshold;
    struct rules_period deadline;
    enum rules_event from;
    char *order;       /* before | with | after | unknown (the individual notices) */
    bool per_campaign; /* counted over the whole campaign, not the jurisdiction's residents */
    char *condition;   /* NULL, or when it is due besides the count */
    bool verified;     /* the entry's unless the regulator says */
    char *note;        /* NULL or text */
};

struct rules_content {
    char *rule; /* title | headings | min_type_points | must_state | must_not_state | ... */
    char *text;
    long months; /* credit_monitoring: its length; -1 when not given */
    bool verified;
};

enum rules_section { SECTION_JURISDICTION, SECTION_FRAMEWORK, SECTION_ABROAD };

struct rules_entry {
    char *code; /* "CA", "HIPAA", "GDPR" */
    enum rules_section section;
    char *name, *citation, *source_kind, *source_text, *checked, *note;
    bool verified;
    size_t line, column; /* where the entry starts in the file (1-based) */
    char **countries;    /* abroad: ISO 3166 alpha-2 codes, NULL-terminated; else NULL */

    bool individual_known;
    struct rules_period individual;
    enum rules_event individual_from;
    char *individual_condition;

    enum rules_list_state regulators_state;
    struct rules_regulator *regulators;
    size_t regulator_count;

    bool cra_known;
    struct rules_regulator cra; /* name "consumer reporting agencies"; threshold, verified */

    bool substitute_known;
    long substitute_cost_above, substitute_people_above, substitute_out_of_date_at_least; /* -1 */
    int substitute_insufficient_contact; /* 1 yes, 0 no, -1 unknown */
    char *substitute_consists_of;        /* NULL: unknown */

    bool delay_known;
    int delay_allowed; /* 1, 0, -1 unknown */
    struct rules_period after_clearance;
    long oral_lapse_days; /* -1: the regime has no such lapse */

    enum rules_list_state content_state;
    struct rules_content *content;
    size_t content_count;
};

struct rules_table {
    char *path, *caveat;
    struct rules_entry *entries;
    size_t count;
};

/*
 * rules_load - read and check the table at path. Every problem is written to diag (when not
 * NULL) as "FILE:LINE:COL: message"; the first also into err. Returns 0, -ENOENT (cannot
 * open) or -EINVAL (any problem); *ret_table is set only on success.
 */
int rules_load(const char *path, FILE *diag, struct rules_table **ret_table, char *err,
               size_t err_size);
/* rules_parse - the same from length bytes of text; name stands for the file in messages. */
int rules_parse(const char *text, size_t length, const char *name, FILE *diag,
                struct rules_table **ret_table, char *err, size_t err_size);
struct rules_table *rules_free(struct rules_table *table);

/* rules_default_path - the table shipped with crier (installed, else the source tree's). */
const char *rules_default_path(void);

/* rules_find - the entry of a code in a section (case-insensitive), or NULL. */
const struct rules_entry *rules_find(const struct rules_table *table, enum rules_section section,
                                     const char *code);
/* rules_find_country - the abroad entry whose countries include country, or NULL. */
const struct rules_entry *rules_find_country(const struct rules_table *table, const char *country);

/* rules_threshold_parse - "500 or more", "more than 500", "any number", "none", "unknown". */
int rules_threshold_parse(const char *text, struct rules_threshold *ret_threshold);
/* rules_threshold_text - the comparison in words, as the table writes it. */
void rules_threshold_text(const struct rules_threshold *threshold, char *buf, size_t size);
/* rules_period_parse - "30 days", "7 business days", "72 hours", "unknown", or a phrase
 * without a fixed count; text is not kept (ret_period->text is left NULL). */
int rules_period_parse(const char *text, struct rules_period *ret_period);
/* rules_event_name - the table's word for an event. */
const char *rules_event_name(enum rules_event event);

/* rules_threshold_verdict - is a notice with this threshold due for count people? */
enum rules_verdict rules_threshold_verdict(const struct rules_threshold *threshold, long count);
/* rules_regulator_verdict - the same, with the regulator's condition taken into account. */
enum rules_verdict rules_regulator_verdict(const struct rules_regulator *regulator, long count);
/* rules_verdict_name - "required", "not required", "unknown", "conditional". */
const char *rules_verdict_name(enum rules_verdict verdict);

/*
 * rules_period_end - the end of a period that starts at start (epoch seconds, UTC): days and
 * hours added, business days counted Monday to Friday, the result the end of the last day
 * (days and business days) or the exact hour. Returns -EINVAL for a period without a fixed
 * count or an unknown one.
 */
int rules_period_end(const struct rules_period *period, double start, double *ret_end);

#endif
