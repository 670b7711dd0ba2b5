/*
 * validate.c - checks and normalizes one affected individual's row: pure functions.
 *
 * A row needs a ref, a name and at least one usable contact (email, fax or postal
 * address). A contact that fails its check is dropped with a note; the row is kept as
 * long as another contact survives. Values are trimmed of ASCII whitespace first.
 *
 * Must never do I/O, never log, and never let a value that could forge a header or
 * break a printed line (CR, LF, NUL, other control characters) into a contact field
 * that is marked usable, nor into an accepted row's name or ref.
 *
 * SECURITY: every value is untrusted. Messages quote at most a short, control-free
 * excerpt of a bad value, so a note can be written to a log or a reject file as is.
 */
#include "crier/validate.h"
#include "crier/crier.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REF_MAX          200 /* bytes in a ref */
#define NAME_MAX_BYTES   300 /* bytes in a name */
#define EMAIL_MAX        254 /* octets in a mailbox (RFC 5321 path limit less the brackets) */
#define EMAIL_LOCAL_MAX  64  /* octets in a local part (RFC 5321 4.5.3.1.1) */
#define DOMAIN_LABEL_MAX 63  /* octets in a domain label (RFC 1035) */
#define FAX_DIGITS_MIN   7   /* digits in the shortest E.164 number accepted */
#define FAX_DIGITS_MAX   15  /* digits in the longest E.164 number (ITU-T E.164) */
#define EXCERPT_MAX      32  /* bytes of a bad value quoted in a note */

/* a limit above as text, for the reason that names it (one number, not two to keep equal) */
#define LIMIT_TEXT(n)  LIMIT_TEXT_(n)
#define LIMIT_TEXT_(n) #n

/* ISO 3166-1 alpha-2: the 249 officially assigned codes, sorted for bsearch. */
static const char country_codes[][3] = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

/*
 * USPS state codes: the 50 states, DC, the inhabited territories (AS GU MP PR VI), the
 * minor outlying islands (UM), the freely associated states that USPS serves with ZIP
 * codes (FM MH PW) and the military "states" (AA AE AP). Sorted for bsearch.
 */
static const char us_region_codes[][3] = {
    "AA", "AE", "AK", "AL", "AP", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "FM", "GA",
    "GU", "HI", "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MH", "MI", "MN", "MO",
    "MP", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR",
    "PW", "RI", "SC", "SD", "TN", "TX", "UM", "UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
};

/* Canada Post province and territory codes, sorted for bsearch. */
static const char ca_region_codes[][3] = {
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
};

static int code_compare(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* code_listed - true if code (exactly two upper-case letters) is in the sorted list. */
static bool code_listed(const char (*list)[3], size_t count, const char *code)
{
    if (code == NULL || strlen(code) != 2)
        return false;
    return bsearch(code, list, count, sizeof(list[0]), code_compare) != NULL;
}

static bool is_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_ascii_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ascii_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char ascii_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static void string_upper(char *s)
{
    for (; *s; s++)
        *s = ascii_upper(*s);
}

static bool string_is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/*
 * text_is_clean - true if s is UTF-8 free of control characters: C0, DEL, C1, and the
 * Unicode line and paragraph separators (U+2028, U+2029), which some renderers honour.
 */
static bool text_is_clean(const char *s)
{
    size_t len = strlen(s);
    if (!utf8_valid(s, len))
        return false;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return false;
        if (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)
            return false;
        if (u[i] == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] == 0xa8 || u[i + 2] == 0xa9))
            return false;
    }
    return true;
}

/* trimmed_copy - s without leading and trailing ASCII whitespace; NULL if nothing is left. */
static char *trimmed_copy(const char *s)
{
    if (s == NULL)
        return NULL;
    const char *end = s + strlen(s);
    while (s < end && is_ascii_space(*s))
        s++;
    while (end > s && is_ascii_space(end[-1]))
        end--;
    if (end == s)
        return NULL;
    return xstrndup(s, (size_t)(end - s));
}

/*
 * excerpt - at most EXCERPT_MAX bytes of a value for a note, cut on a UTF-8 boundary.
 * Only called on values already known to be free of control characters.
 */
static char *excerpt(const char *value)
{
    size_t len = strlen(value);
    if (len <= EXCERPT_MAX)
        return xstrdup(value);
    size_t cut = EXCERPT_MAX;
    while (cut > 0 && ((unsigned char)value[cut] & 0xc0) == 0x80)
        cut--;
    return xasprintf("%.*s...", (int)cut, value);
}

static void note_add(struct recipient_valid *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* note_add - record why a contact was dropped; notes past RECIPIENT_NOTE_MAX are lost. */
static void note_add(struct recipient_valid *out, const char *fmt, ...)
{
    if (out->note_count >= RECIPIENT_NOTE_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    out->notes[out->note_count++] = xvasprintf(fmt, ap);
    va_end(ap);
}

static bool is_atext(char c)
{
    return is_ascii_alpha(c) || is_ascii_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* local_part_length - length of a valid Dot-string or Quoted-string at s, or 0. */
static size_t local_part_length(const char *s)
{
    size_t i = 0;
    if (s[0] == '"') {
        for (i = 1; s[i] != '"'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                unsigned char next = (unsigned char)s[i + 1];
                if (next < 32 || next > 126)
                    return 0;
                i++;
            } else if (c < 32 || c > 126) {
                return 0; /* includes the end of the string: no closing quote */
            }
        }
        return i == 1 ? 0 : i + 1; /* an empty quoted local part is not accepted */
    }
    bool atom_started = false;
    for (; s[i] != '\0' && s[i] != '@'; i++) {
        if (s[i] == '.') {
            if (!atom_started)
                return 0; /* leading dot or two dots in a row */
            atom_started = false;
        } else if (is_atext(s[i])) {
            atom_started = true;
        } else {
            return 0;
        }
    }
    return atom_started ? i : 0; /* empty, or a trailing dot */
}

/* address_literal_valid - "[192.0.2.1]" or "[IPv6:2001:db8::1]". */
static bool address_literal_valid(const char *s, size_t len)
{
    char address[64];
    if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof(address))
        return false;
    memcpy(address, s + 1, len - 2);
    address[len - 2] = '\0';
    unsigned char binary[16];
    if (strncmp(address, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, address + 5, binary) == 1;
    return inet_pton(AF_INET, address, binary) == 1;
}

/*
 * domain_valid - at least two LDH labels of 1..63 octets that neither start nor end
 * with '-'; the last label is not all digits (that would be an IPv4 address in disguise).
 */
static bool domain_valid(const char *s, size_t len)
{
    size_t labels = 0;
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        bool all_digits = true;
        while (end < len && s[end] != '.') {
            if (!is_ascii_alpha(s[end]) && !is_ascii_digit(s[end]) && s[end] != '-')
                return false;
            if (!is_ascii_digit(s[end]))
                all_digits = false;
            end++;
        }
        size_t label_length = end - start;
        if (label_length == 0 || label_length > DOMAIN_LABEL_MAX)
            return false;
        if (s[start] == '-' || s[end - 1] == '-')
            return false;
        labels++;
        if (end == len)
            return labels >= 2 && !all_digits;
        start = end + 1;
    }
    return false;
}

bool validate_email(const char *address)
{
    if (address == NULL)
        return false;
    size_t len = strlen(address);
    if (len == 0 || len > EMAIL_MAX)
        return false;
    size_t local_length = local_part_length(address);
    if (local_length == 0 || local_length > EMAIL_LOCAL_MAX || address[local_length] != '@')
        return false;
    const char *domain = address + local_length + 1;
    size_t domain_length = len - local_length - 1;
    if (domain[0] == '[')
        return address_literal_valid(domain, domain_length);
    return domain_valid(domain, domain_length);
}

bool validate_fax(const char *number, char *out, size_t out_size)
{
    if (number == NULL)
        return false;
    char digits[FAX_DIGITS_MAX + 2]; /* '+', the digits, NUL */
    size_t n = 0;
    bool plus_seen = false;
    for (const char *p = number; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '.' || c == '-' || c == '(' || c == ')')
            continue;
        if (c == '+' && !plus_seen && n == 0) {
            plus_seen = true;
            digits[n++] = c;
            continue;
        }
        if (!is_ascii_digit(c) || !plus_seen || n > FAX_DIGITS_MAX)
            return false;
        if (n == 1 && c == '0')
            return false; /* country codes never start with 0 */
        digits[n++] = c;
    }
    if (n < FAX_DIGITS_MIN + 1)
        return false;
    digits[n] = '\0';
    if (out != NULL) {
        if (out_size < n + 1)
            return false;
        memcpy(out, digits, n + 1);
    }
    return true;
}

bool validate_us_zip(const char *zip, char *out, size_t out_size)
{
    if (zip == NULL)
        return false;
    size_t len = strlen(zip);
    for (size_t i = 0; i < len; i++)
        if (!is_ascii_digit(zip[i]) && !(len == 10 && i == 5 && zip[i] == '-'))
            return false;
    char normalized[11];
    if (len == 5) {
        memcpy(normalized, zip, 6);
    } else if (len == 9 || (len == 10 && zip[5] == '-')) {
        memcpy(normalized, zip, 5);
        normalized[5] = '-';
        memcpy(normalized + 6, zip + len - 4, 4);
        normalized[10] = '\0';
    } else {
        return false;
    }
    if (out != NULL) {
        if (out_size < strlen(normalized) + 1)
            return false;
        strcpy(out, normalized);
    }
    return true;
}

bool validate_region(const char *country, const char *region)
{
    if (str_empty(region))
        return false;
    char code[3];
    bool is_us = str_empty(country) || strcasecmp(country, "US") == 0;
    bool is_ca = !is_us && strcasecmp(country, "CA") == 0;
    if (!is_us && !is_ca)
        return true;
    if (strlen(region) != 2)
        return false;
    code[0] = ascii_upper(region[0]);
    code[1] = ascii_upper(region[1]);
    code[2] = '\0';
    if (is_us)
        return code_listed(us_region_codes, ARRAY_SIZE(us_region_codes), code);
    return code_listed(ca_region_codes, ARRAY_SIZE(ca_region_codes), code);
}

bool validate_country(const char *code)
{
    return code_listed(country_codes, ARRAY_SIZE(country_codes), code);
}

/*
 * ca_postal_code_normalize - "A1A 1A1" (any case, with or without the space) into
 * upper-case "A1A 1A1". Canada Post never uses D F I O Q U, nor W or Z first.
 */
static bool ca_postal_code_normalize(const char *code, char out[8])
{
    char compact[7];
    size_t n = 0;
    size_t len = strlen(code);
    if (len != 6 && !(len == 7 && code[3] == ' '))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (i == 3 && len == 7)
            continue;
        compact[n++] = ascii_upper(code[i]);
    }
    for (size_t i = 0; i < 6; i++) {
        char c = compact[i];
        if (i % 2 == 1) {
            if (!is_ascii_digit(c))
                return false;
        } else if (c < 'A' || c > 'Z' || strchr("DFIOQU", c) || (i == 0 && strchr("WZ", c))) {
            return false;
        }
    }
    memcpy(out, compact, 3);
    out[3] = ' ';
    memcpy(out + 4, compact + 3, 3);
    out[7] = '\0';
    return true;
}

/* identity_check - reason the row's ref or name is unusable, or NULL. */
static const char *identity_check(const struct recipient_valid *out)
{
    const char *ref = out->field[FIELD_REF];
    const char *name = out->field[FIELD_NAME];
    if (ref == NULL)
        return "missing ref";
    if (!text_is_clean(ref))
        return "ref contains a control character";
    if (strlen(ref) > REF_MAX)
        return "ref is longer than " LIMIT_TEXT(REF_MAX) " bytes";
    if (name == NULL)
        return "missing name";
    if (!text_is_clean(name))
        return "name contains a line break or control character";
    if (strlen(name) > NAME_MAX_BYTES)
        return "name is longer than " LIMIT_TEXT(NAME_MAX_BYTES) " bytes";
    return NULL;
}

static void field_drop(struct recipient_valid *out, enum crier_field field)
{
    free(out->field[field]);
    out->field[field] = NULL;
}

/* email_check - keep a valid mailbox with its domain in lower case, else drop it. */
static void email_check(struct recipient_valid *out)
{
    char *email = out->field[FIELD_EMAIL];
    if (email == NULL)
        return;
    if (has_line_break(email)) {
        note_add(out, "email: contains a line break");
    } else if (!string_is_ascii(email)) {
        note_add(out, "email: non-ASCII addresses (SMTPUTF8, IDN) are not supported yet");
    } else if (!validate_email(email)) {
        note_add(out, "email: not a valid address");
    } else {
        char *domain = strrchr(email, '@') + 1;
        if (domain[0] != '[')
            for (char *p = domain; *p; p++)
                *p = ascii_lower(*p);
        out->has_email = true;
        return;
    }
    field_drop(out, FIELD_EMAIL);
}

/* fax_check - keep an E.164 number in "+NNN" form, else drop it. */
static void fax_check(struct recipient_valid *out)
{
    char normalized[FAX_DIGITS_MAX + 2];
    const char *fax = out->field[FIELD_FAX];
    if (fax == NULL)
        return;
    if (has_line_break(fax)) {
        note_add(out, "fax: contains a line break");
    } else if (!validate_fax(fax, normalized, sizeof(normalized))) {
        note_add(out, "fax: not in E.164 form (+CC...)");
    } else {
        free(out->field[FIELD_FAX]);
        out->field[FIELD_FAX] = xstrdup(normalized);
        out->has_fax = true;
        return;
    }
    field_drop(out, FIELD_FAX);
}

static const enum crier_field address_fields[] = {
    FIELD_ADDRESS1, FIELD_ADDRESS2, FIELD_CITY, FIELD_REGION, FIELD_POSTAL_CODE, FIELD_COUNTRY,
};

/* address_missing_note - "address: missing city, postal_code" if a required part is absent. */
static bool address_missing_note(struct recipient_valid *out, bool us_or_ca)
{
    static const struct {
        enum crier_field field;
        const char *name;
    } required[] = {
        {FIELD_ADDRESS1, "address1"},
        {FIELD_CITY, "city"},
        {FIELD_REGION, "region"},
        {FIELD_POSTAL_CODE, "postal_code"},
    };
    char missing[64] = "";
    for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
        /* region and postal code are required only where there is a list to check */
        bool needed =
            required[i].field == FIELD_ADDRESS1 || required[i].field == FIELD_CITY || us_or_ca;
        if (!needed || out->field[required[i].field] != NULL)
            continue;
        if (missing[0] != '\0')
            strcat(missing, ", ");
        strcat(missing, required[i].name);
    }
    if (missing[0] == '\0')
        return false;
    note_add(out, "address: missing %s", missing);
    return true;
}

/* address_usable - check the postal parts for mailing; notes the first problem found. */
static bool address_usable(struct recipient_valid *out)
{
    char **field = out->field;
    for (size_t i = 0; i < ARRAY_SIZE(address_fields); i++) {
        const char *value = field[address_fields[i]];
        if (value == NULL)
            continue;
        if (has_line_break(value)) {
            note_add(out, "address: contains a line break");
            return false;
        }
        if (!text_is_clean(value)) {
            note_add(out, "address: contains a control character");
            return false;
        }
    }
    const char *country = field[FIELD_COUNTRY];
    if (!validate_country(country)) {
        char *shown = excerpt(country);
        note_add(out, "address: unknown country '%s'", shown);
        free(shown);
        return false;
    }
    bool is_us = strcmp(country, "US") == 0;
    bool is_ca = strcmp(country, "CA") == 0;
    if (is_us || is_ca) {
        if (field[FIELD_REGION] != NULL)
            string_upper(field[FIELD_REGION]);
    }
    if (address_missing_note(out, is_us || is_ca))
        return false;
    if (!is_us && !is_ca)
        return true;

    const char *postal_code = field[FIELD_POSTAL_CODE];
    const char *region = field[FIELD_REGION];
    char normalized[11];
    bool postal_ok = is_us ? validate_us_zip(postal_code, normalized, sizeof(normalized))
                           : ca_postal_code_normalize(postal_code, normalized);
    if (!postal_ok) {
        char *shown = excerpt(postal_code);
        if (is_us)
            note_add(out, "address: invalid ZIP code '%s'", shown);
        else
            note_add(out, "address: invalid postal code '%s' for CA", shown);
        free(shown);
        return false;
    }
    if (!validate_region(country, region)) {
        char *shown = excerpt(region);
        note_add(out, "address: invalid %s code '%s' for %s", is_us ? "state" : "province", shown,
                 country);
        free(shown);
        return false;
    }
    free(field[FIELD_POSTAL_CODE]);
    field[FIELD_POSTAL_CODE] = xstrdup(normalized);
    return true;
}

/* address_check - default and normalize the country, then decide has_address. */
static void address_check(struct recipient_valid *out)
{
    char **field = out->field;
    if (field[FIELD_COUNTRY] == NULL)
        field[FIELD_COUNTRY] = xstrdup("US");
    else
        string_upper(field[FIELD_COUNTRY]);
    bool any_part = false;
    for (size_t i = 0; i < ARRAY_SIZE(address_fields); i++)
        if (address_fields[i] != FIELD_COUNTRY && field[address_fields[i]] != NULL)
            any_part = true;
    if (any_part)
        out->has_address = address_usable(out);
}

/* no_contact_reason - "no usable contact: NOTE; NOTE", or the plain reason without notes. */
static char *no_contact_reason(const struct recipient_valid *out)
{
    if (out->note_count == 0)
        return xstrdup("no usable contact (email, fax or postal address)");
    char *reason = xstrdup("no usable contact:");
    for (size_t i = 0; i < out->note_count; i++) {
        char *longer = xasprintf("%s%s %s", reason, i == 0 ? "" : ";", out->notes[i]);
        free(reason);
        reason = longer;
    }
    return reason;
}

int validate_recipient(const struct recipient_input *in, struct recipient_valid *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < FIELD_COUNT; i++)
        out->field[i] = trimmed_copy(in->field[i]);

    const char *identity_problem = identity_check(out);
    email_check(out);
    fax_check(out);
    address_check(out);

    if (identity_problem != NULL)
        out->reject_reason = xstrdup(identity_problem);
    else if (!out->has_email && !out->has_fax && !out->has_address)
        out->reject_reason = no_contact_reason(out);
    return out->reject_reason != NULL ? -EINVAL : 0;
}

void recipient_valid_clear(struct recipient_valid *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < FIELD_COUNT; i++)
        free(v->field[i]);
    for (size_t i = 0; i < v->note_count && i < RECIPIENT_NOTE_MAX; i++)
        free(v->notes[i]);
    free(v->reject_reason);
    memset(v, 0, sizeof(*v));
}
