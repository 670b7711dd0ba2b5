/*
 * poll.h - the engine side of polling: notices a channel left waiting for a final status
 * (a fax 'submitted' to its gateway) are asked about through the channel's poll op, and
 * what the answer decides is recorded.
 *
 * A poller is one thread per channel that has a poll op, with its own database connection
 * and its own channel session, in every `crier run` that enables the channel. Each round
 * is one transaction: the due notices are locked (FOR UPDATE SKIP LOCKED, so pollers of
 * several workers share the work), asked about, and their new states and dispatch-log rows
 * written; a crash in between rolls it all back, and the notices are asked about again.
 */
#ifndef CRIER_POLL_H
#define CRIER_POLL_H

#include <stdatomic.h>
#include <stddef.h>

#include "crier/channel.h"
#include "crier/config.h"
#include "crier/db.h"

struct crier_pollers;

/*
 * pollers_start - a poller thread for each enabled channel (lanes > 0) that has a poll op;
 * they run until *stop is true. *ret is NULL when there is none to start.
 */
int pollers_start(const struct crier_config *config, atomic_bool *stop, const char *host,
                  struct crier_pollers **ret);

/* pollers_stop - wait for the pollers to finish their round (set *stop first); NULL-safe. */
struct crier_pollers *pollers_stop(struct crier_pollers *pollers);

/*
 * poll_work_left - notices of running campaigns still waiting for a final status that a
 * poller of this configuration will ask about (`crier run --until-idle` waits for them);
 * one that only a person can resolve is not counted.
 */
int poll_work_left(struct crier_db *db, const struct crier_config *config, long *ret_count);

/* poll_channels - the names of the channels with a poll op into *ret (db_array); with a
 * config, only those it enables with lanes (the ones this process polls). */
void poll_channels(const struct crier_config *config, struct db_array *ret);

/* poll_settings - the poll interval and final-status timeout of a channel (seconds). */
void poll_settings(const struct crier_config *config, enum crier_channel_id id, long *ret_interval,
                   long *ret_final_timeout);

/* What a status the gateway pushed did (poll_callback_record). */
enum poll_callback_result {
    CALLBACK_RECORDED,  /* the notice moved on, logged as the poller logs it */
    CALLBACK_NO_NOTICE, /* no notice is submitted with that fax id and token: an unknown fax,
                           another notice's, or one already final; nothing changed */
    CALLBACK_NOT_FINAL, /* not a final status (pending, an incoming fax): nothing changed */
};

/*
 * poll_callback_record - record a final status the channel's gateway pushed (crier serve's
 * webhook; callback as ops->callback read it) exactly as the poller would for that status:
 * same decision, same record statement (transition_record_polled), one transaction, with
 * the detail marked "(webhook)" and owner as the actor. Only a notice still submitted on
 * ops's channel whose fax id and token both match changes; so a replay, a callback for
 * another fax, or one the poller beat changes nothing. Returns 0 or a database error.
 */
int poll_callback_record(struct crier_db *db, const struct crier_config *config,
                         const struct crier_channel_ops *ops, const struct crier_callback *callback,
                         const char *owner, enum poll_callback_result *ret_result);

#endif
