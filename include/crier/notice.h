/*
 * notice.h - the notice vocabulary: its states, what a transport can say about it, its id,
 * and how one is read from a result row. Every module that speaks of a notice speaks
 * these words; nothing here does I/O.
 *
 * A notice id is the campaign id times 2^32 plus the recipient's seq in the campaign's
 * list (engine/core/sql/001_init.sql), so the id alone names its campaign's partition.
 * notice_id_make is the one place that formula is written in C, NOTICE_ID_SQL the one
 * place in the statements C sends.
 */
#ifndef CRIER_NOTICE_H
#define CRIER_NOTICE_H

#include <stdbool.h>
#include <stdint.h>

/* The states, each with the spelling the database stores (001_init.sql's CHECK): one list,
 * so an enum value and its name cannot drift apart. */
#define NOTICE_STATES(X)                                                                           \
    X(STATE_READY, "ready")                                                                        \
    X(STATE_HELD, "held")                                                                          \
    X(STATE_SENDING, "sending")                                                                    \
    X(STATE_SENT, "sent")           /* email accepted by the relay */                              \
    X(STATE_SUBMITTED, "submitted") /* fax accepted by the gateway, final status pending */        \
    X(STATE_DELIVERED, "delivered")                                                                \
    X(STATE_BATCHED, "batched") /* in a print batch */                                             \
    X(STATE_MAILED, "mailed")                                                                      \
    X(STATE_UNDELIVERABLE, "undeliverable")                                                        \
    X(STATE_CANCELLED, "cancelled")

#define NOTICE_STATE_ENUM(state, name) state,
enum crier_notice_state { NOTICE_STATES(NOTICE_STATE_ENUM) STATE_COUNT };
#undef NOTICE_STATE_ENUM

/* notice_state_name - "ready", "held", ...; the spelling stored in the database. */
const char *notice_state_name(enum crier_notice_state state);
/* notice_state_from_name - the reverse; -EINVAL for an unknown name. */
int notice_state_from_name(const char *name, enum crier_notice_state *ret_state);

/* ---- the id ------------------------------------------------------------------------- */

#define NOTICE_ID_SHIFT 32 /* notice id = campaign id * 2^32 + recipient seq */

#define NOTICE_ID_TEXT_(x) #x
#define NOTICE_ID_TEXT(x)  NOTICE_ID_TEXT_(x)
/* NOTICE_ID_SQL - the same formula as SQL text over two SQL expressions (string literals),
 * for a statement that looks notices up by key from their recipients' seqs. */
#define NOTICE_ID_SQL(campaign, seq)                                                               \
    "((" campaign ")::bigint << " NOTICE_ID_TEXT(NOTICE_ID_SHIFT) ") + (" seq ")"

static inline int64_t notice_id_make(int64_t campaign_id, int64_t seq)
{
    return (int64_t)(((uint64_t)campaign_id << NOTICE_ID_SHIFT) + (uint64_t)seq);
}
/* notice_id_campaign - the campaign an id belongs to. */
static inline int64_t notice_id_campaign(int64_t id)
{
    return id >> NOTICE_ID_SHIFT;
}
/* notice_id_seq - the recipient's seq in its campaign's list. */
static inline int64_t notice_id_seq(int64_t id)
{
    return id - (notice_id_campaign(id) << NOTICE_ID_SHIFT);
}

/* ---- outcomes and the notice ------------------------------------------------------ */

/* What a transport said about one notice. Two kinds of failure, never a third. */
enum crier_outcome_kind {
    OUTCOME_DELIVERED,  /* final delivery confirmed */
    OUTCOME_ACCEPTED,   /* handed over; the channel's accepted_state (sent, submitted, batched) */
    OUTCOME_TEMPORARY,  /* try again later on the same channel (crash, timeout, 4xx) */
    OUTCOME_PERMANENT,  /* this channel will never work for this person: fall back */
    OUTCOME_NO_ADDRESS, /* no usable address for this channel: fall back */
    OUTCOME_PENDING,    /* poll only: no final status yet, the notice stays as it is */
};

#define OUTCOME_DETAIL_MAX 512

struct crier_outcome {
    enum crier_outcome_kind kind;
    char detail[OUTCOME_DETAIL_MAX]; /* the transport's own words: SMTP reply, HTTP status */
    char content_sha256[65];         /* hex SHA-256 of exactly what was sent, or "" */
    long retry_after_seconds;        /* TEMPORARY only: the peer's own delay, 0 = backoff;
                                        PENDING: when to ask again, 0 = the poll interval,
                                        -1 = never by itself (a person must look) */
    char transport_id[128];          /* ACCEPTED: the transport's id for what was handed
                                        over (a fax id), "" when it is not known */
    int64_t content_at;              /* Unix time the content was rendered at (its Date
                                        header, its printed date), 0 when none: recorded
                                        so that `crier audit show` can render it again */
};

struct render_campaign;
struct notice_renderer;

/* A person's contact a channel reaches them by: the field of the notice (and column of
 * crier.recipient) it needs. CONTACT_ANY: a channel that needs none. */
enum crier_contact { CONTACT_ANY = 0, CONTACT_EMAIL, CONTACT_FAX, CONTACT_POSTAL };

/* One claimed notice, with its recipient's snapshot. Strings are NULL when absent. */
struct crier_notice {
    int64_t id;
    int64_t campaign_id;
    const char *campaign_name;
    const char *ref;   /* the recipient's ref in the list */
    const char *token; /* unguessable per-notice token (VERP, fax labels) */
    const char *name;
    const char *email;
    const char *fax;
    const char *address[5]; /* address1, address2, city, region, postal_code */
    const char *country;
    bool mailable;                          /* the postal address passed validation */
    const char *vars_json;                  /* the list's other columns as a JSON object */
    int attempt;                            /* attempts in all, this one included */
    int channel_attempt;                    /* attempts on the current channel, this one included */
    bool delayed;                           /* a law-enforcement hold delayed this notice */
    int64_t content_time;                   /* Unix time to render its content at (Date header,
                                               notice_date): 0 = now; audit show sets the
                                               recorded one */
    const struct render_campaign *render;   /* the campaign's templates and metadata... */
    const struct notice_renderer *renderer; /* ...and the engine's functions that use them */
};

/* ---- a notice from a result row ------------------------------------------------------ */

/*
 * NOTICE_COLUMNS(n, r) - the select list notice_from_row reads, n the notice table's (or a
 * CTE's) alias and r the recipient's, as string literals: SELECT NOTICE_COLUMNS("n", "r"),
 * <the query's own columns> ... Those own columns start at NOTICE_COLUMN_COUNT; each query
 * names them in an enum beside its SQL.
 */
#define NOTICE_COLUMNS(n, r)                                                                       \
    n ".id, " n ".campaign_id, " n ".id || '.' || " n ".token, " n ".attempt, " n                  \
      ".channel_attempt, " r ".ref, " r ".name, " r ".email, " r ".fax, " r ".address1, " r        \
      ".address2, " r ".city, " r ".region, " r ".postal_code, " r ".country, " r ".mailable, " r  \
      ".vars::text"

enum notice_column {
    NOTICE_COL_ID,
    NOTICE_COL_CAMPAIGN_ID,
    NOTICE_COL_TOKEN, /* id.token, as VERP and fax labels carry it */
    NOTICE_COL_ATTEMPT,
    NOTICE_COL_CHANNEL_ATTEMPT,
    NOTICE_COL_REF,
    NOTICE_COL_NAME,
    NOTICE_COL_EMAIL,
    NOTICE_COL_FAX,
    NOTICE_COL_ADDRESS1, /* address2, city, region, postal_code follow */
    NOTICE_COL_COUNTRY = NOTICE_COL_ADDRESS1 + 5,
    NOTICE_COL_MAILABLE,
    NOTICE_COL_VARS,
    NOTICE_COLUMN_COUNT
};

struct pg_result; /* libpq's PGresult: channels never read rows, the engine does */

/* notice_from_row - fill *ret from row's NOTICE_COLUMNS; its strings point into result,
 * which must outlive it. Fields the columns do not carry are zeroed. */
void notice_from_row(const struct pg_result *result, int row, struct crier_notice *ret);

#endif
