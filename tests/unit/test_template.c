/*
 * test_template.c - the template module against files written to temporary directories:
 * variables, sections, HTML escaping, the standalone-line rule, every syntax error with
 * the FILE:LINE:COL it must name, region overrides, checking, determinism, and the
 * default templates shipped in config/templates/default.
 *
 * The variables crier gives every template (the "known" set; docs/templates.md says the
 * same, with the per-state rules):
 *
 *   ref, name, email, fax,              the recipient, from the affected-individual list
 *   address1, address2, city, region,
 *   postal_code, country
 *   campaign, incident                  the campaign's name and incident reference
 *   notice_date                         YYYY-MM-DD, the day the notice is rendered
 *   delayed_for_law_enforcement         boolean: a hold delayed this notice
 *   meta.organisation                   from the campaign's --meta file
 *   meta.contact_phone, meta.contact_email
 *   meta.incident_date, meta.discovered_date
 *   meta.what_happened, meta.information_involved
 *   meta.what_we_are_doing, meta.what_you_can_do
 *   meta.records_affected               optional; the default templates never use it
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crier/crier.h"
#include "crier/template.h"

/* temp_dir_make - a fresh directory under /tmp; remove it with temp_dir_remove. */
static char *temp_dir_make(void)
{
    char *dir = xstrdup("/tmp/crier-test-template-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void temp_dir_write(const char *dir, const char *name, const char *data, size_t length)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, length, file), length);
    assert_int_equal(fclose(file), 0);
    free(path);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void temp_dir_remove(char *dir)
{
    assert_int_equal(nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

/* diag_relative - diag text with every "DIR/" removed, so cases can say "t.txt:1:1". */
static char *diag_relative(const char *text, const char *dir)
{
    char *prefix = xasprintf("%s/", dir);
    size_t prefix_length = strlen(prefix);
    char *out = xstrdup(text);
    char *found;
    while ((found = strstr(out, prefix)) != NULL)
        memmove(found, found + prefix_length, strlen(found + prefix_length) + 1);
    free(prefix);
    return out;
}

/* A file for a temporary template directory. */
struct file {
    const char *name;
    const char *data;
    size_t length; /* 0 = strlen(data) */
};

/* set_load_files - write files to a new directory, load it, remove it. Returns the rc; the
 * diag text, with the directory removed from paths, goes to *ret_diag. */
static int set_load_files(const struct file *files, size_t count, struct template_set **ret_set,
                          char **ret_diag)
{
    char *dir = temp_dir_make();
    for (size_t i = 0; i < count; i++)
        temp_dir_write(dir, files[i].name, files[i].data,
                       files[i].length ? files[i].length : strlen(files[i].data));
    char *diag_text = NULL;
    size_t diag_size = 0;
    FILE *diag = open_memstream(&diag_text, &diag_size);
    assert_non_null(diag);
    int rc = template_set_load(dir, diag, ret_set);
    fclose(diag);
    *ret_diag = diag_relative(diag_text, dir);
    free(diag_text);
    temp_dir_remove(dir);
    return rc;
}

/* set_load_text - a set of one file, t.txt, holding text; fails the test on errors. */
static struct template_set *set_load_text(const char *text)
{
    struct file file = {"t.txt", text, 0};
    struct template_set *set = NULL;
    char *diag = NULL;
    int rc = set_load_files(&file, 1, &set, &diag);
    if (rc != 0)
        fail_msg("loading '%s': rc %d: %s", text, rc, diag);
    free(diag);
    return set;
}

static json_t *json_parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY, &error);
    if (value == NULL)
        fail_msg("bad JSON in test '%s': %s", text, error.text);
    return value;
}

/* One rendering: the template t.txt, the variables, and what must come out. */
struct render_case {
    const char *title;
    const char *template;
    const char *vars; /* JSON object */
    bool html;
    const char *want;     /* the output when want_rc is 0 */
    int want_rc;          /* 0, -ENOENT (unknown variable) or -EINVAL (not text) */
    const char *want_err; /* the whole message, paths relative */
};

static const struct render_case render_cases[] = {
    {"plain text", "Just text.\n", "{}", false, "Just text.\n", 0, NULL},
    {"empty template", "", "{}", false, "", 0, NULL},
    {"variable", "Hello {{name}}!", "{\"name\": \"Zo\\u00eb\"}", false, "Hello Zo\xc3\xab!", 0,
     NULL},
    {"blanks inside the tag", "{{ name }}|{{\tname\t}}|{{  name}}", "{\"name\": \"x\"}", false,
     "x|x|x", 0, NULL},
    {"nested names", "{{meta.organisation}} / {{a.b.c}}",
     "{\"meta\": {\"organisation\": \"Acme\"}, \"a\": {\"b\": {\"c\": \"deep\"}}}", false,
     "Acme / deep", 0, NULL},
    {"integers", "{{n}} {{negative}} {{zero}}", "{\"n\": 42, \"negative\": -7, \"zero\": 0}", false,
     "42 -7 0", 0, NULL},
    {"large integer", "{{n}}", "{\"n\": 9007199254740993}", false, "9007199254740993", 0, NULL},
    {"reals with %.15g", "{{a}} {{b}} {{c}} {{d}}",
     "{\"a\": 2.5, \"b\": 0.1, \"c\": 1e20, \"d\": 3.0}", false, "2.5 0.1 1e+20 3", 0, NULL},
    {"null renders empty", "[{{x}}]", "{\"x\": null}", false, "[]", 0, NULL},
    {"empty string", "[{{x}}]", "{\"x\": \"\"}", false, "[]", 0, NULL},
    {"utf-8 text and value", "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x80\x94 {{v}} \xe6\x97\xa5\xe6\x9c\xac",
     "{\"v\": \"\xf0\x9f\x93\xa8\"}", false,
     "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x80\x94 \xf0\x9f\x93\xa8 \xe6\x97\xa5\xe6\x9c\xac", 0, NULL},
    {"braces that are not tags", "a } }} { b {x}", "{}", false, "a } }} { b {x}", 0, NULL},
    {"boolean is not text", "{{flag}}", "{\"flag\": true}", false, NULL, -EINVAL,
     "t.txt:1:1: 'flag' is not a text value"},
    {"false is not text", "x{{flag}}", "{\"flag\": false}", false, NULL, -EINVAL,
     "t.txt:1:2: 'flag' is not a text value"},
    {"object is not text", "a {{meta}}", "{\"meta\": {}}", false, NULL, -EINVAL,
     "t.txt:1:3: 'meta' is not a text value"},
    {"array is not text", "\n  {{list}}", "{\"list\": [1]}", false, NULL, -EINVAL,
     "t.txt:2:3: 'list' is not a text value"},
    {"unknown variable", "Hi {{nme}}", "{\"name\": \"x\"}", false, NULL, -ENOENT,
     "t.txt:1:4: unknown variable 'nme'"},
    {"unknown nested variable", "{{meta.missing}}", "{\"meta\": {}}", false, NULL, -ENOENT,
     "t.txt:1:1: unknown variable 'meta.missing'"},
    {"name through a string", "{{name.first}}", "{\"name\": \"x\"}", false, NULL, -ENOENT,
     "t.txt:1:1: unknown variable 'name.first'"},
    {"unknown flag", "ok\n{{#flag}}x{{/flag}}", "{}", false, NULL, -ENOENT,
     "t.txt:2:1: unknown variable 'flag'"},
    {"unknown inverted flag", "{{^flag}}x{{/flag}}", "{}", false, NULL, -ENOENT,
     "t.txt:1:1: unknown variable 'flag'"},
    {"column counts bytes", "\xc3\xa9 {{x}}", "{}", false, NULL, -ENOENT,
     "t.txt:1:4: unknown variable 'x'"},
    {"vars not an object", "{{x}}", "[]", false, NULL, -ENOENT, "t.txt:1:1: unknown variable 'x'"},
    /* rendering stops at what it renders; template_set_check finds the rest */
    {"unknown variable in a skipped section", "{{#f}}{{nope}}{{/f}}", "{\"f\": false}", false, "",
     0, NULL},
    {"html escapes values", "<p>{{v}}</p>", "{\"v\": \"<a href=\\\"x\\\">Tom & Jerry's</a>\"}",
     true, "<p>&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;</p>", 0, NULL},
    {"text mode leaves values alone", "<p>{{v}}</p>",
     "{\"v\": \"<a href=\\\"x\\\">Tom & Jerry's</a>\"}", false,
     "<p><a href=\"x\">Tom & Jerry's</a></p>", 0, NULL},
    {"html leaves template text alone", "<b>&amp; \"'{{v}}'\"</b>", "{\"v\": \"&\"}", true,
     "<b>&amp; \"'&amp;'\"</b>", 0, NULL},
    {"html numbers", "{{n}}", "{\"n\": -1.5}", true, "-1.5", 0, NULL},
    {"a value holding template syntax is literal", "{{v}}",
     "{\"v\": \"{{evil}} {{#x}}{{/y}} {{{z}}}\"}", false, "{{evil}} {{#x}}{{/y}} {{{z}}}", 0, NULL},
    {"a value holding template syntax is literal in html", "{{v}}", "{\"v\": \"{{evil}}\"}", true,
     "{{evil}}", 0, NULL},
    {"comment", "a{{! note }}b", "{}", false, "ab", 0, NULL},
    {"comment with braces and lines", "a{{! one {{x}\ntwo }}b", "{}", false, "ab", 0, NULL},
    {"section true", "{{#f}}yes{{/f}}", "{\"f\": true}", false, "yes", 0, NULL},
    {"section false", "{{#f}}yes{{/f}}", "{\"f\": false}", false, "", 0, NULL},
    {"inverted false", "{{^f}}no{{/f}}", "{\"f\": false}", false, "no", 0, NULL},
    {"blanks in section tags", "{{# f }}a{{/ f }}{{ ^f }}b{{ /f }}", "{\"f\": true}", false, "a", 0,
     NULL},
    {"an array section renders once", "{{#f}}x{{/f}}", "{\"f\": [1, 2, 3]}", false, "x", 0, NULL},
    {"nested sections", "{{#a}}A{{#b}}B{{/b}}{{^b}}!B{{/b}}{{/a}}.", "{\"a\": true, \"b\": false}",
     false, "A!B.", 0, NULL},
    {"skipped outer skips inner", "{{#a}}A{{#b}}B{{/b}}{{/a}}.", "{\"a\": 0, \"b\": 1}", false, ".",
     0, NULL},
    {"same flag nested", "{{#a}}1{{#a}}2{{/a}}3{{/a}}", "{\"a\": \"y\"}", false, "123", 0, NULL},
    {"dotted section name", "{{#meta.x}}y{{/meta.x}}", "{\"meta\": {\"x\": \"1\"}}", false, "y", 0,
     NULL},
    {"standalone section lines, true", "a\n{{#f}}\nb\n{{/f}}\nc\n", "{\"f\": true}", false,
     "a\nb\nc\n", 0, NULL},
    {"standalone section lines, false", "a\n{{#f}}\nb\n{{/f}}\nc\n", "{\"f\": false}", false,
     "a\nc\n", 0, NULL},
    {"indented standalone lines", "a\n  {{#f}}\n  b\n\t{{/f}}  \nc", "{\"f\": true}", false,
     "a\n  b\nc", 0, NULL},
    {"standalone lines with crlf", "a\r\n{{#f}}\r\nb\r\n{{/f}}\r\nc\r\n", "{\"f\": true}", false,
     "a\r\nb\r\nc\r\n", 0, NULL},
    {"standalone on the first and the last line", "{{#f}}\nb\n{{/f}}", "{\"f\": true}", false,
     "b\n", 0, NULL},
    {"standalone inverted", "a\n{{^f}}\nb\n{{/f}}\nc", "{\"f\": false}", false, "a\nb\nc", 0, NULL},
    {"standalone comment", "a\n  {{! note }}\nb", "{}", false, "a\nb", 0, NULL},
    {"standalone multi-line comment", "a\n{{! one\ntwo }}\nb", "{}", false, "a\nb", 0, NULL},
    {"inline section keeps its line", "a {{#f}}b{{/f}} c\n", "{\"f\": true}", false, "a b c\n", 0,
     NULL},
    {"text after the tag: not standalone", "{{#f}} x\n{{/f}}", "{\"f\": true}", false, " x\n", 0,
     NULL},
    {"a variable is never standalone", "a\n{{v}}\nb", "{\"v\": \"\"}", false, "a\n\nb", 0, NULL},
    {"two tags on a line: not standalone", "a\n{{#f}}{{/f}}\nb", "{\"f\": true}", false, "a\n\nb",
     0, NULL},
    {"address block without address2",
     "{{name}}\n{{#address2}}\n{{address2}}\n{{/address2}}\n{{city}}\n",
     "{\"name\": \"N\", \"address2\": \"\", \"city\": \"C\"}", false, "N\nC\n", 0, NULL},
    {"address block with address2",
     "{{name}}\n{{#address2}}\n{{address2}}\n{{/address2}}\n{{city}}\n",
     "{\"name\": \"N\", \"address2\": \"Apt 4\", \"city\": \"C\"}", false, "N\nApt 4\nC\n", 0,
     NULL},
    {"optional paragraph, shown", "p1\n{{#d}}\n\np2\n{{/d}}\n\np3\n", "{\"d\": true}", false,
     "p1\n\np2\n\np3\n", 0, NULL},
    {"optional paragraph, hidden", "p1\n{{#d}}\n\np2\n{{/d}}\n\np3\n", "{\"d\": false}", false,
     "p1\n\np3\n", 0, NULL},
};

static void run_render_case(const struct render_case *c)
{
    struct template_set *set = set_load_text(c->template);
    const struct template *template = template_find(set, "t.txt", NULL);
    assert_non_null(template);
    json_t *vars = json_parse(c->vars);
    char err[512] = "";
    char *text = (char *)"untouched";
    size_t length = 12345;
    int rc = template_render(template, vars, c->html, &text, &length, err, sizeof(err));
    if (rc != c->want_rc)
        fail_msg("%s: rc %d, want %d (%s)", c->title, rc, c->want_rc, err);
    if (rc == 0) {
        assert_int_equal(strlen(text), length);
        if (strcmp(text, c->want) != 0)
            fail_msg("%s: got '%s', want '%s'", c->title, text, c->want);
        free(text);
    } else {
        /* on failure the results are left alone */
        assert_string_equal(text, "untouched");
        assert_int_equal(length, 12345);
        const char *path = template_path(template);
        char *dir = xstrndup(path, strlen(path) - strlen("/t.txt"));
        char *relative = diag_relative(err, dir);
        if (strcmp(relative, c->want_err) != 0)
            fail_msg("%s: error '%s', want '%s'", c->title, relative, c->want_err);
        free(relative);
        free(dir);
    }
    json_decref(vars);
    template_set_free(set);
}

static void test_render_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(render_cases); i++)
        run_render_case(&render_cases[i]);
}

/* A flag's value and whether a section treats it as true. */
struct truth_case {
    const char *value; /* JSON */
    bool truthy;
};

static const struct truth_case truth_cases[] = {
    {"true", true},  {"false", false},     {"null", false}, {"\"\"", false}, {"\"0\"", true},
    {"\" \"", true}, {"\"no\"", true},     {"0", false},    {"1", true},     {"-1", true},
    {"0.0", false},  {"0.5", true},        {"[]", false},   {"[0]", true},   {"[false]", true},
    {"{}", true},    {"{\"a\": 1}", true},
};

static void test_section_truth(void **state)
{
    (void)state;
    struct template_set *set = set_load_text("{{#f}}Y{{/f}}{{^f}}N{{/f}}");
    const struct template *template = template_find(set, "t.txt", NULL);
    for (size_t i = 0; i < ARRAY_SIZE(truth_cases); i++) {
        json_t *vars = json_object();
        json_object_set_new(vars, "f", json_parse(truth_cases[i].value));
        char err[256] = "";
        char *text = NULL;
        size_t length = 0;
        int rc = template_render(template, vars, false, &text, &length, err, sizeof(err));
        if (rc != 0)
            fail_msg("flag %s: rc %d (%s)", truth_cases[i].value, rc, err);
        const char *want = truth_cases[i].truthy ? "Y" : "N";
        if (strcmp(text, want) != 0)
            fail_msg("flag %s: got '%s', want '%s'", truth_cases[i].value, text, want);
        free(text);
        json_decref(vars);
    }
    /* missing is not false: it is an error */
    json_t *vars = json_object();
    char err[256] = "";
    char *text = NULL;
    size_t length = 0;
    assert_int_equal(template_render(template, vars, false, &text, &length, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "t.txt:1:1: unknown variable 'f'"));
    assert_null(text);
    /* err may be omitted */
    assert_int_equal(template_render(template, vars, false, &text, &length, NULL, 0), -ENOENT);
    json_decref(vars);
    template_set_free(set);
}

/* A file that must not load, and everything load must say about it. */
struct syntax_case {
    const char *title;
    const char *template;
    size_t length;    /* 0 = strlen(template) */
    const char *diag; /* every line, paths relative */
};

static const struct syntax_case syntax_cases[] = {
    {"unterminated tag", "Hello {{name\nnext\n", 0, "t.txt:1:7: unterminated tag\n"},
    {"unterminated tag at the end", "ab {{x", 0, "t.txt:1:4: unterminated tag\n"},
    {"open braces at the end", "ab\n{{", 0, "t.txt:2:1: unterminated tag\n"},
    {"tag across lines", "{{na\nme}}", 0, "t.txt:1:1: unterminated tag\n"},
    {"unterminated comment", "a\n{{! never closed\n\n", 0, "t.txt:2:1: unterminated comment\n"},
    {"unclosed section", "a\n  {{#f}}\nb\n", 0, "t.txt:2:3: unclosed section {{#f}}\n"},
    {"unclosed inverted section", "{{^f}}", 0, "t.txt:1:1: unclosed section {{^f}}\n"},
    {"close without open", "x{{/a}}", 0, "t.txt:1:2: {{/a}} closes no open section\n"},
    {"mismatched close", "{{#a}}x{{/b}}", 0,
     "t.txt:1:8: {{/b}} does not match the open section {{#a}} at 1:1\n"
     "t.txt:1:1: unclosed section {{#a}}\n"},
    {"close skipping an open section", "{{#a}}\n{{^b}}\n{{/a}}\n{{/b}}\n", 0,
     "t.txt:3:1: {{/a}} closes 'a' while {{^b}} at 2:1 is open\n"
     "t.txt:4:1: {{/b}} closes no open section\n"},
    {"triple mustache", "a{{{x}}}b", 0, "t.txt:1:2: triple mustache '{{{' is not supported\n"},
    {"unterminated triple mustache", "a{{{x\n", 0,
     "t.txt:1:2: triple mustache '{{{' is not supported\n"},
    {"delimiter change", "{{=<% %>=}}\n", 0,
     "t.txt:1:1: delimiter change '{{=' is not supported\n"},
    {"partial", "x\n {{> footer}}", 0, "t.txt:2:2: partial '{{>' is not supported\n"},
    {"unescaped variable", "{{&v}}", 0, "t.txt:1:1: unescaped variable '{{&' is not supported\n"},
    {"empty tags", "{{}} {{ }} {{#}}", 0,
     "t.txt:1:1: empty tag\nt.txt:1:6: empty tag\nt.txt:1:12: empty tag\n"},
    {"invalid names", "{{a b}}{{a..b}}{{.}}{{x.}}{{\"q\"}}", 0,
     "t.txt:1:1: invalid name 'a b'\n"
     "t.txt:1:8: invalid name 'a..b'\n"
     "t.txt:1:16: invalid name '.'\n"
     "t.txt:1:21: invalid name 'x.'\n"
     "t.txt:1:27: invalid name '\"q\"'\n"},
    {"column counts bytes", "\xc3\xa9 {{#x}}", 0, "t.txt:1:4: unclosed section {{#x}}\n"},
    {"every error is reported", "{{a b}}\n{{#x}}\n{{/y}}\n{{{z}}}\n", 0,
     "t.txt:1:1: invalid name 'a b'\n"
     "t.txt:3:1: {{/y}} does not match the open section {{#x}} at 2:1\n"
     "t.txt:4:1: triple mustache '{{{' is not supported\n"
     "t.txt:2:1: unclosed section {{#x}}\n"},
    {"invalid utf-8", "ok\nab\xff\n", 0, "t.txt:2:3: not valid UTF-8\n"},
    {"truncated utf-8 at the end", "ok\xc3", 0, "t.txt:1:3: not valid UTF-8\n"},
    {"overlong utf-8", "\xc0\xaf", 0, "t.txt:1:1: not valid UTF-8\n"},
    {"surrogate", "x\n\xc3\xa9\xed\xa0\x80", 0, "t.txt:2:3: not valid UTF-8\n"},
    {"nul byte", "ab\ncd\0e", 8, "t.txt:2:3: NUL byte\n"},
};

static void test_syntax_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(syntax_cases); i++) {
        const struct syntax_case *c = &syntax_cases[i];
        struct file file = {"t.txt", c->template, c->length};
        struct template_set *set = NULL;
        char *diag = NULL;
        int rc = set_load_files(&file, 1, &set, &diag);
        if (rc != -EINVAL)
            fail_msg("%s: rc %d, want -EINVAL", c->title, rc);
        assert_null(set);
        if (strcmp(diag, c->diag) != 0)
            fail_msg("%s: diag\n%s\nwant\n%s", c->title, diag, c->diag);
        free(diag);
    }
}

static void test_errors_in_several_files(void **state)
{
    (void)state;
    const struct file files[] = {
        {"b.txt", "{{#x}}", 0},
        {"ok.txt", "{{fine}}", 0},
        {"a.txt", "\n{{/y}}", 0},
    };
    struct template_set *set = NULL;
    char *diag = NULL;
    assert_int_equal(set_load_files(files, ARRAY_SIZE(files), &set, &diag), -EINVAL);
    assert_null(set);
    assert_string_equal(diag, "a.txt:2:1: {{/y}} closes no open section\n"
                              "b.txt:1:1: unclosed section {{#x}}\n");
    free(diag);
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t limit = 1024 * 1024;
    char *big = xmalloc(limit + 1);
    memset(big, 'x', limit + 1);
    memcpy(big, "{{v}}", 5);

    struct file file = {"t.txt", big, limit};
    struct template_set *set = NULL;
    char *diag = NULL;
    assert_int_equal(set_load_files(&file, 1, &set, &diag), 0);
    assert_string_equal(diag, "");
    free(diag);
    json_t *vars = json_pack("{s:s}", "v", "yy");
    char *text = NULL;
    size_t length = 0;
    assert_int_equal(
        template_render(template_find(set, "t.txt", NULL), vars, false, &text, &length, NULL, 0),
        0);
    assert_int_equal(length, limit - 5 + 2);
    free(text);
    json_decref(vars);
    set = template_set_free(set);
    assert_null(set);

    file.length = limit + 1;
    assert_int_equal(set_load_files(&file, 1, &set, &diag), -EINVAL);
    assert_null(set);
    assert_string_equal(diag, "t.txt: larger than 1 MiB\n");
    free(diag);
    free(big);
}

static void test_directory_rules(void **state)
{
    (void)state;
    char *dir = temp_dir_make();
    const char *bad = "{{ broken";
    temp_dir_write(dir, "letter.md", "L", 1);
    temp_dir_write(dir, "email.txt", "T", 1);
    temp_dir_write(dir, "email.CA.txt", "C", 1);
    temp_dir_write(dir, "email.subject", "S", 1);
    temp_dir_write(dir, "empty.txt", "", 0);
    /* none of these is a template, so none may break the load */
    temp_dir_write(dir, ".hidden.txt", bad, strlen(bad));
    temp_dir_write(dir, "email.txt~", bad, strlen(bad));
    temp_dir_write(dir, "README", bad, strlen(bad));
    temp_dir_write(dir, "trailing.", bad, strlen(bad));
    char *sub = xasprintf("%s/sub.txt", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    temp_dir_write(sub, "x.txt", bad, strlen(bad));
    free(sub);

    char *dir_slash = xasprintf("%s/", dir);
    struct template_set *set = NULL;
    assert_int_equal(template_set_load(dir_slash, NULL, &set), 0);
    const char **names = template_set_names(set);
    const char *want[] = {"email.CA.txt", "email.subject", "email.txt",
                          "empty.txt",    "letter.md",     NULL};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        if (want[i] == NULL)
            assert_null(names[i]);
        else
            assert_string_equal(names[i], want[i]);
    }
    free(names);

    char *want_path = xasprintf("%s/letter.md", dir);
    assert_string_equal(template_path(template_find(set, "letter.md", NULL)), want_path);
    free(want_path);
    template_set_free(set);
    free(dir_slash);

    /* an empty set loads, and finds nothing */
    char *empty = temp_dir_make();
    assert_int_equal(template_set_load(empty, NULL, &set), 0);
    names = template_set_names(set);
    assert_null(names[0]);
    free(names);
    assert_null(template_find(set, "email.txt", "CA"));
    template_set_free(set);
    temp_dir_remove(empty);

    temp_dir_remove(dir);
    assert_null(template_set_free(NULL));
}

static void test_region_must_be_upper_case(void **state)
{
    (void)state;
    const struct file files[] = {
        {"email.txt", "ok", 0},
        {"email.ca.txt", "x", 0},
        {"letter.Ma.md", "x", 0},
    };
    struct template_set *set = NULL;
    char *diag = NULL;
    assert_int_equal(set_load_files(files, ARRAY_SIZE(files), &set, &diag), -EINVAL);
    assert_null(set);
    /* readdir order is the file system's: look for each line */
    assert_non_null(strstr(diag, "email.ca.txt: region 'ca' must be two upper-case letters\n"));
    assert_non_null(strstr(diag, "letter.Ma.md: region 'Ma' must be two upper-case letters\n"));
    free(diag);
}

static void test_missing_directory(void **state)
{
    (void)state;
    struct template_set *set = NULL;
    char *diag_text = NULL;
    size_t diag_size = 0;
    FILE *diag = open_memstream(&diag_text, &diag_size);
    assert_int_equal(template_set_load("/tmp/crier-test-template-does-not-exist", diag, &set),
                     -ENOENT);
    fclose(diag);
    assert_null(set);
    assert_non_null(strstr(diag_text, "/tmp/crier-test-template-does-not-exist: "));
    free(diag_text);
}

/* template_find(name, region) and the file it must choose; NULL for none. */
struct find_case {
    const char *name;
    const char *region;
    const char *want;
};

static const struct find_case find_cases[] = {
    {"email.txt", "CA", "email.CA.txt"},
    {"email.txt", "ca", "email.CA.txt"},
    {"email.txt", "MA", "email.txt"},
    {"email.txt", NULL, "email.txt"},
    {"email.txt", "", "email.txt"},
    {"email.txt", "CAL", "email.txt"},
    {"email.txt", "C", "email.txt"},
    {"email.html", "CA", "email.html"},
    {"letter.md", "MA", "letter.MA.md"},
    {"letter.md", "CA", "letter.md"},
    {"email.subject", "CA", "email.subject"},
    {"email.CA.txt", NULL, "email.CA.txt"},
    {"fax.txt", "CA", NULL},
    {"fax.txt", NULL, NULL},
    {"email", "CA", NULL},
};

static void test_region_override(void **state)
{
    (void)state;
    const struct file files[] = {
        {"email.txt", "generic", 0},  {"email.CA.txt", "california", 0},
        {"email.html", "generic", 0}, {"email.subject", "subject", 0},
        {"letter.md", "generic", 0},  {"letter.MA.md", "massachusetts", 0},
    };
    struct template_set *set = NULL;
    char *diag = NULL;
    assert_int_equal(set_load_files(files, ARRAY_SIZE(files), &set, &diag), 0);
    free(diag);
    for (size_t i = 0; i < ARRAY_SIZE(find_cases); i++) {
        const struct find_case *c = &find_cases[i];
        const struct template *found = template_find(set, c->name, c->region);
        if (c->want == NULL) {
            if (found != NULL)
                fail_msg("find(%s, %s): got %s, want none", c->name, c->region,
                         template_path(found));
            continue;
        }
        if (found == NULL)
            fail_msg("find(%s, %s): got none, want %s", c->name, c->region, c->want);
        const char *path = template_path(found);
        const char *base = strrchr(path, '/') + 1;
        if (strcmp(base, c->want) != 0)
            fail_msg("find(%s, %s): got %s, want %s", c->name, c->region, base, c->want);
    }
    template_set_free(set);
}

static void test_check(void **state)
{
    (void)state;
    const struct file files[] = {
        {"b.txt", "x {{^missing}}y{{/missing}}\n{{meta.nope}}\n{{name.first}}\n", 0},
        {"a.txt", "{{name}}\n{{#meta.flag}}{{meta.org}}{{/meta.flag}}\n{{typo}}\n", 0},
        {"c.txt", "{{#f}}{{nope}}{{/f}}", 0},
    };
    struct template_set *set = NULL;
    char *diag = NULL;
    assert_int_equal(set_load_files(files, ARRAY_SIZE(files), &set, &diag), 0);
    free(diag);

    json_t *known =
        json_parse("{\"name\": \"\", \"f\": false, \"meta\": {\"flag\": true, \"org\": \"\"}}");
    char *check_text = NULL;
    size_t check_size = 0;
    FILE *check_diag = open_memstream(&check_text, &check_size);
    assert_int_equal(template_set_check(set, known, check_diag), -ENOENT);
    fclose(check_diag);
    const char *path = template_path(template_find(set, "a.txt", NULL));
    char *dir = xstrndup(path, strlen(path) - strlen("/a.txt"));
    char *relative = diag_relative(check_text, dir);
    assert_string_equal(relative, "a.txt:3:1: unknown variable 'typo'\n"
                                  "b.txt:1:3: unknown variable 'missing'\n"
                                  "b.txt:2:1: unknown variable 'meta.nope'\n"
                                  "b.txt:3:1: unknown variable 'name.first'\n"
                                  "c.txt:1:7: unknown variable 'nope'\n");
    free(relative);
    free(check_text);
    free(dir);
    json_decref(known);

    /* values are ignored: only the names count */
    known = json_parse("{\"name\": null, \"typo\": 0, \"missing\": [], \"f\": null, \"nope\": 1,"
                       " \"meta\": {\"flag\": 0, \"org\": 0, \"nope\": 0}}");
    assert_int_equal(template_set_check(set, known, NULL), -ENOENT); /* name.first */
    json_object_set_new(known, "name", json_pack("{s:s}", "first", ""));
    assert_int_equal(template_set_check(set, known, NULL), 0);
    json_decref(known);
    template_set_free(set);
}

static void test_deterministic(void **state)
{
    (void)state;
    const char *text = "{{#a}}\n{{x}} & {{y.z}}\n{{/a}}\n{{^b}}{{n}} {{r}}{{/b}}\n";
    struct template_set *first = set_load_text(text);
    struct template_set *second = set_load_text(text);
    json_t *vars = json_parse("{\"a\": [1], \"b\": \"\", \"x\": \"<\\u00e9>\", \"y\": {\"z\": "
                              "\"'\"}, \"n\": 7, \"r\": 0.25}");
    /* the same variables, built in another key order */
    json_t *reordered = json_parse("{\"r\": 0.25, \"n\": 7, \"y\": {\"z\": \"'\"}, \"x\": "
                                   "\"<\\u00e9>\", \"b\": \"\", \"a\": [1]}");
    for (int html = 0; html <= 1; html++) {
        char *outputs[4];
        size_t lengths[4];
        const struct template_set *sets[4] = {first, first, second, second};
        const json_t *var_sets[4] = {vars, vars, vars, reordered};
        for (int i = 0; i < 4; i++)
            assert_int_equal(template_render(template_find(sets[i], "t.txt", NULL), var_sets[i],
                                             html, &outputs[i], &lengths[i], NULL, 0),
                             0);
        for (int i = 1; i < 4; i++) {
            assert_int_equal(lengths[i], lengths[0]);
            assert_memory_equal(outputs[i], outputs[0], lengths[0]);
        }
        assert_string_equal(outputs[0], html ? "&lt;\xc3\xa9&gt; & &#39;\n7 0.25\n"
                                             : "<\xc3\xa9> & '\n7 0.25\n");
        for (int i = 0; i < 4; i++)
            free(outputs[i]);
    }
    json_decref(vars);
    json_decref(reordered);
    template_set_free(first);
    template_set_free(second);
}

/* The names of the known set, as crier builds it; see the comment at the top. */
static const char *const known_top[] = {
    "ref",    "name",        "email",   "fax",      "address1", "address2",    "city",
    "region", "postal_code", "country", "campaign", "incident", "notice_date",
};
static const char *const known_meta[] = {
    "organisation",         "contact_phone",     "contact_email",
    "incident_date",        "discovered_date",   "what_happened",
    "information_involved", "what_we_are_doing", "what_you_can_do",
};

/* known_build - the known set; with_records adds meta.records_affected. */
static json_t *known_build(bool with_records)
{
    json_t *known = json_object();
    for (size_t i = 0; i < ARRAY_SIZE(known_top); i++)
        json_object_set_new(known, known_top[i], json_string(""));
    json_object_set_new(known, "delayed_for_law_enforcement", json_false());
    json_t *meta = json_object();
    for (size_t i = 0; i < ARRAY_SIZE(known_meta); i++)
        json_object_set_new(meta, known_meta[i], json_string(""));
    if (with_records)
        json_object_set_new(meta, "records_affected", json_string(""));
    json_object_set_new(known, "meta", meta);
    return known;
}

#define WHAT_HAPPENED "An unauthorised party copied the HR file share (WHAT-HAPPENED)."
#define ORGANISATION  "Example & Sons <Ltd>"

/* sample_vars - realistic variables for one notice; every value is distinguishable. */
static json_t *sample_vars(const char *region, bool delayed)
{
    json_t *vars = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "ref", "R-0042",
        "name", "Zo\xc3\xab O'Brien", "email", "zoe@example.org", "fax", "", "address1",
        "1 Main St", "address2", "", "city", "Springfield", "region", region ? region : "NY",
        "postal_code", "01101", "country", "US", "campaign", "hr-share-2026", "incident", "INC-7",
        "notice_date", "2026-12-01", "delayed_for_law_enforcement", delayed);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "organisation",
                             ORGANISATION, "contact_phone", "1-800-555-0100", "contact_email",
                             "privacy@example.com", "incident_date", "2026-11-02",
                             "discovered_date", "2026-11-20", "what_happened", WHAT_HAPPENED,
                             "information_involved", "Your name and date of birth.",
                             "what_we_are_doing", "We closed the share.", "what_you_can_do",
                             "Watch your accounts.", "records_affected", "RECORDS-AFFECTED");
    json_object_set_new(vars, "meta", meta);
    return vars;
}

/* assert_in_order - every needle occurs in text, each after the one before. */
static void assert_in_order(const char *what, const char *text, const char *const *needles,
                            size_t count)
{
    const char *at = text;
    for (size_t i = 0; i < count; i++) {
        const char *found = strstr(at, needles[i]);
        if (found == NULL)
            fail_msg("%s: '%s' missing or out of order", what, needles[i]);
        at = found + strlen(needles[i]);
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t length = strlen(s), suffix_length = strlen(suffix);
    return length >= suffix_length && strcmp(s + length - suffix_length, suffix) == 0;
}

/* file_slurp - a whole (small) file as a string. */
static char *file_slurp(const char *path)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    char *data = xmalloc(1024 * 1024 + 1);
    size_t length = fread(data, 1, 1024 * 1024, file);
    data[length] = '\0';
    fclose(file);
    return data;
}

/* check_default_notice - what every rendered default notice must say, by region. */
static void check_default_notice(const struct template *template, const char *name,
                                 const char *region, bool delayed, const char *text, size_t length)
{
    char *what =
        xasprintf("%s for %s%s", name, region ? region : "(none)", delayed ? ", delayed" : "");
    bool html = ends_with(name, ".html");
    bool letter = ends_with(name, ".md");
    const char *organisation = html ? "Example &amp; Sons &lt;Ltd&gt;" : ORGANISATION;

    if (!utf8_valid(text, length) || strlen(text) != length)
        fail_msg("%s: not UTF-8 text", what);
    if (strstr(text, "{{") != NULL || strstr(text, "RECORDS-AFFECTED") != NULL)
        fail_msg("%s: template syntax or records_affected in the output", what);
    if (strstr(text, organisation) == NULL)
        fail_msg("%s: organisation missing or not escaped as it should be", what);
    if (html && strstr(text, ORGANISATION) != NULL)
        fail_msg("%s: unescaped value in HTML", what);

    if (strcmp(name, "email.subject") == 0) {
        if (strchr(text, '\n') != NULL || strchr(text, '\r') != NULL)
            fail_msg("%s: the subject is not one line", what);
        free(what);
        return;
    }
    if (strstr(text, "R-0042") == NULL || strstr(text, "1-800-555-0100") == NULL ||
        strstr(text, "privacy@example.com") == NULL || strstr(text, "2026-12-01") == NULL)
        fail_msg("%s: reference, contact details or notice date missing", what);
    if (letter) {
        /* the Markdown subset: no tables, links, HTML or deeper headings in the file */
        char *source = file_slurp(template_path(template));
        if (strchr(source, '<') != NULL || strchr(source, '|') != NULL ||
            strstr(source, "](") != NULL || strstr(source, "###") != NULL)
            fail_msg("%s: outside the letter Markdown subset", what);
        free(source);
        if (strncmp(text, "# Notice of Data Breach\n", 24) != 0)
            fail_msg("%s: a letter starts with its title", what);
    }

    bool massachusetts = region != NULL && strcmp(region, "MA") == 0;
    bool california = region != NULL && strcmp(region, "CA") == 0;
    if (massachusetts) {
        /* M.G.L. c. 93H s. 3(b) */
        if (strstr(text, "WHAT-HAPPENED") != NULL)
            fail_msg("%s: a Massachusetts notice may not describe the breach", what);
        const char *needles[] = {
            "police report", "security freeze", "free of charge", "Social Security number",
            "Equifax",       "Experian",        "TransUnion"};
        for (size_t i = 0; i < ARRAY_SIZE(needles); i++)
            if (strstr(text, needles[i]) == NULL)
                fail_msg("%s: Massachusetts notice lacks '%s'", what, needles[i]);
    } else if (strstr(text, "WHAT-HAPPENED") == NULL) {
        fail_msg("%s: what happened is missing", what);
    }
    if (california) {
        /* Cal. Civ. Code 1798.82(d)(1): the title, then these headings in this order */
        const char *headings[] = {"Notice of Data Breach",
                                  html ? ">What Happened<" : "What Happened\n",
                                  html ? ">What Information Was Involved<"
                                       : "What Information Was Involved\n",
                                  html ? ">What We Are Doing<" : "What We Are Doing\n",
                                  html ? ">What You Can Do<" : "What You Can Do\n",
                                  html ? ">For More Information<" : "For More Information\n"};
        assert_in_order(what, text, headings, ARRAY_SIZE(headings));
        const char *delay = delayed
                                ? "Notification was delayed as a result of a law enforcement"
                                : "Notification was not delayed as a result of a law enforcement";
        if (strstr(text, delay) == NULL)
            fail_msg("%s: lacks '%s'", what, delay);
        if (strstr(text, "1-888-298-0045") == NULL || strstr(text, "Atlanta, GA") == NULL)
            fail_msg("%s: credit reporting agencies' numbers and addresses missing", what);
    }
    free(what);
}

static void test_default_templates(void **state)
{
    (void)state;
    const char *data = getenv("CRIER_TEST_DATA");
    if (data == NULL)
        skip();
    char *dir = xasprintf("%s/../../config/templates/default", data);
    struct template_set *set = NULL;
    assert_int_equal(template_set_load(dir, stderr, &set), 0);

    const char **names = template_set_names(set);
    const char *want[] = {"email.CA.html",
                          "email.CA.txt",
                          "email.MA.html",
                          "email.MA.txt",
                          "email.html",
                          "email.subject",
                          "email.txt",
                          "letter.CA.md",
                          "letter.MA.md",
                          "letter.md",
                          NULL};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        if (want[i] == NULL)
            assert_null(names[i]);
        else
            assert_string_equal(names[i], want[i]);
    }
    free(names);

    /* only known names; and none uses meta.records_affected */
    json_t *known = known_build(true);
    assert_int_equal(template_set_check(set, known, stderr), 0);
    json_decref(known);
    known = known_build(false);
    assert_int_equal(template_set_check(set, known, stderr), 0);
    json_decref(known);

    const char *channels[] = {"email.subject", "email.txt", "email.html", "letter.md"};
    const char *regions[] = {NULL, "NY", "CA", "MA", "ma"};
    for (size_t r = 0; r < ARRAY_SIZE(regions); r++) {
        for (int delayed = 0; delayed <= 1; delayed++) {
            json_t *vars = sample_vars(regions[r], delayed);
            for (size_t c = 0; c < ARRAY_SIZE(channels); c++) {
                const struct template *template = template_find(set, channels[c], regions[r]);
                assert_non_null(template);
                bool html = ends_with(channels[c], ".html");
                char err[512] = "";
                char *text = NULL, *again = NULL;
                size_t length = 0, again_length = 0;
                if (template_render(template, vars, html, &text, &length, err, sizeof(err)) != 0)
                    fail_msg("%s: %s", channels[c], err);
                assert_int_equal(
                    template_render(template, vars, html, &again, &again_length, NULL, 0), 0);
                assert_int_equal(again_length, length);
                assert_memory_equal(again, text, length);
                const char *region =
                    regions[r] != NULL && strcmp(regions[r], "ma") == 0 ? "MA" : regions[r];
                check_default_notice(template, channels[c], region, delayed, text, length);
                free(text);
                free(again);
            }
            json_decref(vars);
        }
    }
    template_set_free(set);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_cases),
        cmocka_unit_test(test_section_truth),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_errors_in_several_files),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_directory_rules),
        cmocka_unit_test(test_region_must_be_upper_case),
        cmocka_unit_test(test_missing_directory),
        cmocka_unit_test(test_region_override),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_default_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
