/*
 * validate.h - checks one affected individual's row: pure functions, no I/O.
 *
 * SECURITY: every value here is untrusted input that will reach SMTP headers, fax
 * cover sheets and printed letters. A value that could forge a header (CR, LF, NUL)
 * is never passed on: in a contact field it drops the contact, in the name it rejects
 * the row.
 */
#ifndef CRIER_VALIDATE_H
#define CRIER_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "crier/config.h"

#define RECIPIENT_NOTE_MAX 4 /* notes about dropped contacts kept per row */

/* One row as read: field[i] is NULL when the column is absent; values are UTF-8. */
struct recipient_input {
    const char *field[FIELD_COUNT];
};

/*
 * One row as it will be stored: normalized values owned by this struct, NULL where
 * absent or dropped. email/fax/mail are the contacts that survived validation.
 */
struct recipient_valid {
    char *field[FIELD_COUNT];
    bool has_email;                  /* field[FIELD_EMAIL] is a valid mailbox */
    bool has_fax;                    /* field[FIELD_FAX] is E.164 */
    bool has_address;                /* the postal address can be mailed */
    char *reject_reason;             /* set when the whole row is rejected */
    char *notes[RECIPIENT_NOTE_MAX]; /* "email: ..." for each contact dropped */
    size_t note_count;
};

/*
 * validate_recipient - check and normalize one row.
 * Returns 0 when the row is accepted (possibly with dropped contacts, listed in notes),
 * -EINVAL when it is rejected (reason in reject_reason). out is always filled and must
 * be released with recipient_valid_clear().
 */
int validate_recipient(const struct recipient_input *in, struct recipient_valid *out);
void recipient_valid_clear(struct recipient_valid *v);

/* validate_email - RFC 5321 Mailbox (dot-atom or quoted local part, domain or address
 * literal), at most 254 octets; no CR, LF, NUL or spaces outside quotes. */
bool validate_email(const char *address);

/* validate_fax - E.164 after removing spaces, dots, dashes and parentheses:
 * '+', a non-zero digit, 7 to 15 digits in all. Writes "+NNN..." to out. */
bool validate_fax(const char *number, char *out, size_t out_size);

/* validate_us_zip - 5 digits, or ZIP+4 written 12345-6789 or 123456789; writes 12345 or
 * 12345-6789 to out (at least 11 bytes). */
bool validate_us_zip(const char *zip, char *out, size_t out_size);

/* validate_region - true if region (any case) is a valid code for country US or CA;
 * countries without a list accept any non-empty region. */
bool validate_region(const char *country, const char *region);

/* validate_country - true for an ISO 3166-1 alpha-2 code (upper case). */
bool validate_country(const char *code);

#endif
