/*
 * test_validate.c - row validation: mailboxes, fax numbers, ZIP and region codes,
 * countries, and whole rows that are accepted, rejected or lose a contact.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crier/crier.h"
#include "crier/validate.h"

static void test_email(void **state)
{
    (void)state;
    static const struct {
        const char *address;
        bool valid;
    } cases[] = {
        {"a@b.c", true},
        {"first.last@example.com", true},
        {"First.Last@Example.COM", true},
        {"user+tag@mail.example.org", true},
        {"o'brien@example.ie", true},
        {"!#$%&'*+-/=?^_`{|}~@example.com", true},
        {"\"quoted local\"@example.com", true},
        {"\"a@b\"@example.com", true},
        {"\"esc\\\"aped\"@example.com", true},
        {"user@[192.0.2.1]", true},
        {"user@[IPv6:2001:db8::1]", true},
        {"a@x-y.example", true},
        {"a@123.example", true},
        {"a..b@x.com", false},
        {".a@x.com", false},
        {"a.@x.com", false},
        {"a@-x.com", false},
        {"a@x-.com", false},
        {"a@x", false},
        {"a@x.", false},
        {"a@.x.com", false},
        {"a@x..com", false},
        {"a@x_y.com", false},
        {"a@1.2.3.4", false},
        {"user@[192.0.2.256]", false},
        {"user@[2001:db8::1]", false},
        {"user@[IPv6:nonsense]", false},
        {"user@[192.0.2.1", false},
        {"x@y.com\r\nBcc: e@evil.example", false},
        {"x@y.com\n", false},
        {"a b@x.com", false},
        {"a\tb@x.com", false},
        {"\"unterminated@x.com", false},
        {"\"\"@x.com", false},
        {"\"line\r\nbreak\"@x.com", false},
        {"a@b@c.com", false},
        {"@x.com", false},
        {"a@", false},
        {"", false},
        {"plainaddress", false},
        {"us\xc3\xa9r@example.com", false},
        {"user@b\xc3\xbc"
         "cher.example",
         false},
        /* 64 octets of local part is the limit */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.com", true},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x.com", false},
        /* a 64-octet label is one too many */
        {"a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", true},
        {"a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        if (validate_email(cases[i].address) != cases[i].valid)
            fail_msg("validate_email(\"%s\") should be %s", cases[i].address,
                     cases[i].valid ? "true" : "false");
    assert_false(validate_email(NULL));

    /* 254 octets in all is the limit */
    char address[300];
    memset(address, 'a', sizeof(address));
    memcpy(address, "x@", 2);
    for (size_t i = 2 + 60; i < 254; i += 61)
        address[i] = '.';
    memcpy(address + 250, ".com", 4);
    address[254] = '\0';
    assert_true(validate_email(address));
    memmove(address + 1, address, 255);
    assert_false(validate_email(address));
}

static void test_fax(void **state)
{
    (void)state;
    static const struct {
        const char *number;
        const char *normalized; /* NULL = invalid */
    } cases[] = {
        {"+1 (415) 555-0100", "+14155550100"},
        {"+44 20 7946 0958", "+442079460958"},
        {"+49.30.123456", "+4930123456"},
        {"+1234567", "+1234567"},
        {"+123456789012345", "+123456789012345"},
        {"+123456", NULL},
        {"+1234567890123456", NULL},
        {"4155550100", NULL},
        {"0044 20 7946 0958", NULL},
        {"+0123456789", NULL},
        {"++14155550100", NULL},
        {"+1 415 555 01x0", NULL},
        {"+1415555\r\n0100", NULL},
        {"1+4155550100", NULL},
        {"+", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char out[32] = "";
        bool ok = validate_fax(cases[i].number, out, sizeof(out));
        if (ok != (cases[i].normalized != NULL))
            fail_msg("validate_fax(\"%s\") returned %d", cases[i].number, ok);
        if (ok)
            assert_string_equal(out, cases[i].normalized);
    }
    char small[8];
    assert_false(validate_fax("+14155550100", small, sizeof(small)));
    assert_false(validate_fax(NULL, small, sizeof(small)));
}

static void test_us_zip(void **state)
{
    (void)state;
    static const struct {
        const char *zip;
        const char *normalized; /* NULL = invalid */
    } cases[] = {
        {"12345", "12345"},
        {"02134", "02134"},
        {"12345-6789", "12345-6789"},
        {"123456789", "12345-6789"},
        {"1234", NULL},
        {"123456", NULL},
        {"12345-678", NULL},
        {"12345 6789", NULL},
        {"1234-56789", NULL},
        {"abcde", NULL},
        {" 12345", NULL},
        {"12345-67890", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char out[11] = "";
        bool ok = validate_us_zip(cases[i].zip, out, sizeof(out));
        if (ok != (cases[i].normalized != NULL))
            fail_msg("validate_us_zip(\"%s\") returned %d", cases[i].zip, ok);
        if (ok)
            assert_string_equal(out, cases[i].normalized);
    }
    char small[6];
    assert_true(validate_us_zip("12345", small, sizeof(small)));
    assert_false(validate_us_zip("12345-6789", small, sizeof(small)));
}

static void test_region_and_country(void **state)
{
    (void)state;
    static const struct {
        const char *country;
        const char *region;
        bool valid;
    } regions[] = {
        {"US", "CA", true},  {"US", "ca", true},  {"US", "DC", true},
        {"US", "PR", true},  {"US", "AE", true},  {"US", "GU", true},
        {"us", "ny", true},  {"US", "XX", false}, {"US", "QC", false},
        {"US", "", false},   {"US", "N", false},  {"US", "NYC", false},
        {"CA", "QC", true},  {"CA", "on", true},  {"CA", "YT", true},
        {"CA", "CA", false}, {"CA", "NY", false}, {"FR", "Île-de-France", true},
        {"GB", "x", true},   {"GB", "", false},   {"DE", NULL, false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(regions); i++)
        if (validate_region(regions[i].country, regions[i].region) != regions[i].valid)
            fail_msg("validate_region(%s, %s) should be %d", regions[i].country,
                     regions[i].region ? regions[i].region : "NULL", regions[i].valid);

    static const struct {
        const char *code;
        bool valid;
    } countries[] = {
        {"US", true},   {"CA", true}, {"GB", true},  {"AX", true},  {"SS", true},
        {"ZW", true},   {"AD", true}, {"UK", false}, {"XK", false}, {"us", false},
        {"USA", false}, {"U", false}, {"", false},   {"EU", false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(countries); i++)
        if (validate_country(countries[i].code) != countries[i].valid)
            fail_msg("validate_country(%s) should be %d", countries[i].code, countries[i].valid);
    assert_false(validate_country(NULL));

    /* the full list: every officially assigned ISO 3166-1 alpha-2 code, no more */
    int assigned = 0;
    for (char a = 'A'; a <= 'Z'; a++)
        for (char b = 'A'; b <= 'Z'; b++)
            assigned += validate_country((char[]){a, b, '\0'});
    assert_int_equal(assigned, 249);
}

/* One row through validate_recipient; fields in enum crier_field order. */
struct row_case {
    const char *title;
    const char *field[FIELD_COUNT];
    int rc;
    const char *reason; /* exact reject_reason, or NULL */
    bool has_email, has_fax, has_address;
    const char *notes[RECIPIENT_NOTE_MAX];                    /* exact notes in order */
    const char *email, *fax, *region, *postal_code, *country; /* stored values */
};

#define ADDR_US "1 Main St", NULL, "Springfield", "il", "62701"

static const struct row_case row_cases[] = {
    {"email only, domain lowered",
     {"r1", "Alice", "  Alice.B@Example.COM "},
     0,
     NULL,
     true,
     false,
     false,
     {NULL},
     "Alice.B@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"all contacts",
     {"r2", "Bob", "bob@example.com", "+1 (415) 555-0100", ADDR_US, "us"},
     0,
     NULL,
     true,
     true,
     true,
     {NULL},
     "bob@example.com",
     "+14155550100",
     "IL",
     "62701",
     "US"},
    {"us address, default country, zip+4",
     {"r3", "Carol", NULL, NULL, ADDR_US "1234"},
     0,
     NULL,
     false,
     false,
     true,
     {NULL},
     NULL,
     NULL,
     "IL",
     "62701-1234",
     "US"},
    {"name with header injection",
     {"r4", "Mallory\r\nBcc: x@evil.example", "m@example.com"},
     -EINVAL,
     "name contains a line break or control character",
     true,
     false,
     false,
     {NULL},
     "m@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"name with tab",
     {"r5", "Tab\tName", "t@example.com"},
     -EINVAL,
     "name contains a line break or control character",
     true,
     false,
     false,
     {NULL},
     "t@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"name with unicode line separator",
     {"r6", "Line\xe2\x80\xa8Sep", "t@example.com"},
     -EINVAL,
     "name contains a line break or control character",
     true,
     false,
     false,
     {NULL},
     "t@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"missing name",
     {"r7", "   ", "a@example.com"},
     -EINVAL,
     "missing name",
     true,
     false,
     false,
     {NULL},
     "a@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"missing ref",
     {NULL, "Dan", "a@example.com"},
     -EINVAL,
     "missing ref",
     true,
     false,
     false,
     {NULL},
     "a@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"ref with line break",
     {"r\n8", "Dan", "a@example.com"},
     -EINVAL,
     "ref contains a control character",
     true,
     false,
     false,
     {NULL},
     "a@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"email header injection dropped, fax kept",
     {"r9", "Eve", "x@y.com\r\nBcc: e@evil.example", "+442079460958"},
     0,
     NULL,
     false,
     true,
     false,
     {"email: contains a line break"},
     NULL,
     "+442079460958",
     NULL,
     NULL,
     "US"},
    {"only an invalid email",
     {"r10", "Frank", "a..b@x.com"},
     -EINVAL,
     "no usable contact: email: not a valid address",
     false,
     false,
     false,
     {"email: not a valid address"},
     NULL,
     NULL,
     NULL,
     NULL,
     "US"},
    {"invalid email and incomplete address",
     {"r11", "Grace", "a@x", NULL, "1 Main St", NULL, NULL, "IL", "62701"},
     -EINVAL,
     "no usable contact: email: not a valid address; address: missing city",
     false,
     false,
     false,
     {"email: not a valid address", "address: missing city"},
     NULL,
     NULL,
     "IL",
     "62701",
     "US"},
    {"invalid email, valid address",
     {"r12", "Heidi", "heidi@", NULL, ADDR_US},
     0,
     NULL,
     false,
     false,
     true,
     {"email: not a valid address"},
     NULL,
     NULL,
     "IL",
     "62701",
     "US"},
    {"no contact at all",
     {"r13", "Ivan"},
     -EINVAL,
     "no usable contact (email, fax or postal address)",
     false,
     false,
     false,
     {NULL},
     NULL,
     NULL,
     NULL,
     NULL,
     "US"},
    {"non-ascii email",
     {"r14", "Jos\xc3\xa9", "jos\xc3\xa9@example.com", "+33 1 23 45 67 89"},
     0,
     NULL,
     false,
     true,
     false,
     {"email: non-ASCII addresses (SMTPUTF8, IDN) are not supported yet"},
     NULL,
     "+33123456789",
     NULL,
     NULL,
     "US"},
    {"fax without plus",
     {"r15", "Ken", "ken@example.com", "415 555 0100"},
     0,
     NULL,
     true,
     false,
     false,
     {"fax: not in E.164 form (+CC...)"},
     "ken@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"bad zip",
     {"r16", "Liz", NULL, NULL, "1 Main St", NULL, "Springfield", "IL", "1234"},
     -EINVAL,
     "no usable contact: address: invalid ZIP code '1234'",
     false,
     false,
     false,
     {"address: invalid ZIP code '1234'"},
     NULL,
     NULL,
     "IL",
     "1234",
     "US"},
    {"bad state",
     {"r17", "Max", "max@example.com", NULL, "1 Main St", NULL, "Springfield", "xx", "62701"},
     0,
     NULL,
     true,
     false,
     false,
     {"address: invalid state code 'XX' for US"},
     "max@example.com",
     NULL,
     "XX",
     "62701",
     "US"},
    {"us address without region",
     {"r18", "Ned", "ned@example.com", NULL, "1 Main St", NULL, "Springfield", NULL, NULL},
     0,
     NULL,
     true,
     false,
     false,
     {"address: missing region, postal_code"},
     "ned@example.com",
     NULL,
     NULL,
     NULL,
     "US"},
    {"canadian address",
     {"r19", "Olive", NULL, NULL, "1 Rue X", NULL, "Montreal", "qc", "h2x1y4", "ca"},
     0,
     NULL,
     false,
     false,
     true,
     {NULL},
     NULL,
     NULL,
     "QC",
     "H2X 1Y4",
     "CA"},
    {"canadian postal code invalid",
     {"r20", "Pat", "p@example.com", NULL, "1 Rue X", NULL, "Montreal", "QC", "12345", "CA"},
     0,
     NULL,
     true,
     false,
     false,
     {"address: invalid postal code '12345' for CA"},
     "p@example.com",
     NULL,
     "QC",
     "12345",
     "CA"},
    {"canadian province invalid",
     {"r21", "Quinn", "q@example.com", NULL, "1 Rue X", NULL, "Montreal", "NY", "H2X 1Y4", "CA"},
     0,
     NULL,
     true,
     false,
     false,
     {"address: invalid province code 'NY' for CA"},
     "q@example.com",
     NULL,
     "NY",
     "H2X 1Y4",
     "CA"},
    {"french address, no postal code needed",
     {"r22", "Remy", NULL, NULL, "8 rue de Rivoli", NULL, "Paris", NULL, NULL, "fr"},
     0,
     NULL,
     false,
     false,
     true,
     {NULL},
     NULL,
     NULL,
     NULL,
     NULL,
     "FR"},
    {"unknown country",
     {"r23", "Sam", "s@example.com", NULL, "1 High St", NULL, "London", NULL, "SW1A 1AA", "UK"},
     0,
     NULL,
     true,
     false,
     false,
     {"address: unknown country 'UK'"},
     "s@example.com",
     NULL,
     NULL,
     "SW1A 1AA",
     "UK"},
    {"address with line break",
     {"r24", "Tom", "t@example.com", NULL, "1 Main St\r\nX-Evil: 1", NULL, "Springfield", "IL",
      "62701"},
     0,
     NULL,
     true,
     false,
     false,
     {"address: contains a line break"},
     "t@example.com",
     NULL,
     "IL",
     "62701",
     "US"},
    {"country alone is no address",
     {"r25", "Uma", "u@example.com", NULL, NULL, NULL, NULL, NULL, NULL, "ZZ"},
     0,
     NULL,
     true,
     false,
     false,
     {NULL},
     "u@example.com",
     NULL,
     NULL,
     NULL,
     "ZZ"},
    {"three dropped contacts",
     {"r26", "Vic", "v@", "123", "1 Main St", NULL, NULL, NULL, NULL, "DE"},
     -EINVAL,
     "no usable contact: email: not a valid address; fax: not in E.164 form (+CC...); "
     "address: missing city",
     false,
     false,
     false,
     {"email: not a valid address", "fax: not in E.164 form (+CC...)", "address: missing city"},
     NULL,
     NULL,
     NULL,
     NULL,
     "DE"},
};

static void string_check(const char *title, const char *what, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: %s is '%s', want '%s'", title, what, got ? got : "NULL",
                 want ? want : "NULL");
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(row_cases); i++) {
        const struct row_case *c = &row_cases[i];
        struct recipient_input in = {0};
        memcpy(in.field, c->field, sizeof(in.field));
        struct recipient_valid out;
        int rc = validate_recipient(&in, &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d (%s)", c->title, rc, c->rc,
                     out.reject_reason ? out.reject_reason : "accepted");
        string_check(c->title, "reject_reason", out.reject_reason, c->reason);
        if (out.has_email != c->has_email || out.has_fax != c->has_fax ||
            out.has_address != c->has_address)
            fail_msg("%s: has email/fax/address %d/%d/%d, want %d/%d/%d", c->title, out.has_email,
                     out.has_fax, out.has_address, c->has_email, c->has_fax, c->has_address);
        size_t want_notes = 0;
        while (want_notes < RECIPIENT_NOTE_MAX && c->notes[want_notes] != NULL)
            want_notes++;
        if (out.note_count != want_notes)
            fail_msg("%s: %zu notes, want %zu (first: %s)", c->title, out.note_count, want_notes,
                     out.note_count ? out.notes[0] : "none");
        for (size_t n = 0; n < want_notes; n++)
            string_check(c->title, "note", out.notes[n], c->notes[n]);
        string_check(c->title, "email", out.field[FIELD_EMAIL], c->email);
        string_check(c->title, "fax", out.field[FIELD_FAX], c->fax);
        string_check(c->title, "region", out.field[FIELD_REGION], c->region);
        string_check(c->title, "postal_code", out.field[FIELD_POSTAL_CODE], c->postal_code);
        string_check(c->title, "country", out.field[FIELD_COUNTRY], c->country);
        if (c->field[FIELD_NAME] != NULL && rc == 0)
            assert_non_null(out.field[FIELD_NAME]);
        recipient_valid_clear(&out);
        recipient_valid_clear(&out); /* twice is safe */
        assert_null(out.reject_reason);
        assert_int_equal(out.note_count, 0);
    }
    recipient_valid_clear(NULL);
}

static void test_trim_and_limits(void **state)
{
    (void)state;
    struct recipient_input in = {0};
    struct recipient_valid out;
    in.field[FIELD_REF] = " \tr1 \r\n";
    in.field[FIELD_NAME] = "  Zo\xc3\xab  Smith\t";
    in.field[FIELD_EMAIL] = "\tzoe@example.com\n";
    assert_int_equal(validate_recipient(&in, &out), 0);
    assert_string_equal(out.field[FIELD_REF], "r1");
    assert_string_equal(out.field[FIELD_NAME], "Zo\xc3\xab  Smith");
    assert_string_equal(out.field[FIELD_EMAIL], "zoe@example.com");
    assert_null(out.field[FIELD_FAX]);
    recipient_valid_clear(&out);

    char ref[202];
    memset(ref, 'r', sizeof(ref));
    ref[200] = '\0';
    in.field[FIELD_REF] = ref;
    assert_int_equal(validate_recipient(&in, &out), 0);
    recipient_valid_clear(&out);
    ref[200] = 'r';
    ref[201] = '\0';
    assert_int_equal(validate_recipient(&in, &out), -EINVAL);
    assert_string_equal(out.reject_reason, "ref is longer than 200 bytes");
    recipient_valid_clear(&out);

    char name[302];
    memset(name, 'n', sizeof(name));
    name[300] = '\0';
    in.field[FIELD_REF] = "r1";
    in.field[FIELD_NAME] = name;
    assert_int_equal(validate_recipient(&in, &out), 0);
    recipient_valid_clear(&out);
    name[300] = 'n';
    name[301] = '\0';
    assert_int_equal(validate_recipient(&in, &out), -EINVAL);
    assert_string_equal(out.reject_reason, "name is longer than 300 bytes");
    recipient_valid_clear(&out);

    /* a long bad value is quoted only in part */
    in.field[FIELD_NAME] = "Yan";
    in.field[FIELD_EMAIL] = "y@example.com";
    in.field[FIELD_ADDRESS1] = "1 Main St";
    in.field[FIELD_CITY] = "Springfield";
    in.field[FIELD_REGION] = "IL";
    in.field[FIELD_POSTAL_CODE] = "123456789012345678901234567890123456789012345678901234567890";
    assert_int_equal(validate_recipient(&in, &out), 0);
    assert_false(out.has_address);
    assert_string_equal(out.notes[0],
                        "address: invalid ZIP code '12345678901234567890123456789012...'");
    recipient_valid_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),  cmocka_unit_test(test_fax),
        cmocka_unit_test(test_us_zip), cmocka_unit_test(test_region_and_country),
        cmocka_unit_test(test_rows),   cmocka_unit_test(test_trim_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
