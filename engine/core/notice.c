/*
 * notice.c - the notice vocabulary's few functions (see notice.h): state names as the
 * database spells them, and a notice read from a result row.
 */
#include "crier/notice.h"
#include "crier/db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STATE_NAME(state, name) [state] = name,
static const char *const state_names[STATE_COUNT] = {NOTICE_STATES(STATE_NAME)};
#undef STATE_NAME

const char *notice_state_name(enum crier_notice_state state)
{
    if ((unsigned)state >= STATE_COUNT)
        return "invalid";
    return state_names[state];
}

int notice_state_from_name(const char *name, enum crier_notice_state *ret_state)
{
    for (int i = 0; i < STATE_COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *ret_state = (enum crier_notice_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

void notice_from_row(const struct pg_result *result, int row, struct crier_notice *ret)
{
    const PGresult *res = result;
    *ret = (struct crier_notice){
        .id = db_int64(res, row, NOTICE_COL_ID),
        .campaign_id = db_int64(res, row, NOTICE_COL_CAMPAIGN_ID),
        .token = PQgetvalue(res, row, NOTICE_COL_TOKEN),
        .attempt = atoi(PQgetvalue(res, row, NOTICE_COL_ATTEMPT)),
        .channel_attempt = atoi(PQgetvalue(res, row, NOTICE_COL_CHANNEL_ATTEMPT)),
        .ref = PQgetvalue(res, row, NOTICE_COL_REF),
        .name = PQgetvalue(res, row, NOTICE_COL_NAME),
        .email = db_value(res, row, NOTICE_COL_EMAIL),
        .fax = db_value(res, row, NOTICE_COL_FAX),
        .country = PQgetvalue(res, row, NOTICE_COL_COUNTRY),
        .mailable = db_flag(res, row, NOTICE_COL_MAILABLE),
        .vars_json = PQgetvalue(res, row, NOTICE_COL_VARS),
    };
    for (int a = 0; a < 5; a++)
        ret->address[a] = db_value(res, row, NOTICE_COL_ADDRESS1 + a);
}
