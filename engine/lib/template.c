/*
 * template.c - notice templates: load a directory of Mustache-subset files once, check
 * them against the variables crier knows, and render them for each recipient.
 *
 * Each file is read and parsed once, at load, into a flat array of nodes in which a
 * section records the index where its body ends; rendering is then one loop with no
 * recursion, however deep the nesting. Rendering reads no files, keeps no state and
 * never logs: the same template and variables give the same bytes.
 *
 * SECURITY: template files come from the operator, variable values from the affected-
 * individual list. Values are copied into the output as bytes (HTML-escaped in HTML mode)
 * and never parsed, so a value holding "{{x}}" comes out as "{{x}}". Files are bounded
 * (TEMPLATE_SIZE_MAX) and must be UTF-8 without NUL bytes.
 */
#include "crier/template.h"
#include "crier/crier.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMPLATE_SIZE_MAX (1024 * 1024) /* bytes in one template file */

enum node_kind {
    NODE_TEXT,     /* bytes of the source, copied as they are */
    NODE_VARIABLE, /* {{name}}: a value, escaped in HTML mode */
    NODE_SECTION,  /* {{#name}}: the body is rendered once when name is truthy */
    NODE_INVERTED, /* {{^name}}: the body is rendered once when name is falsy */
};

struct node {
    enum node_kind kind;
    size_t offset; /* NODE_TEXT: where its bytes start in the source */
    size_t length; /* NODE_TEXT: how many bytes */
    char *name;    /* other kinds: the dotted name, "meta.organisation" */
    size_t line;   /* other kinds: where the tag starts, 1-based */
    size_t column; /* other kinds: in bytes, 1-based */
    size_t end;    /* sections: index of the first node after the body */
};

struct template
{
    char *name;           /* file name in the directory: "email.CA.txt" */
    char *path;           /* directory and file name, for messages */
    char *source;         /* the file's bytes; text nodes point into it */
    size_t source_length; /* bytes in source */
    struct node *nodes;   /* in document order */
    size_t node_count;
};

struct template_set {
    struct template **templates; /* sorted by name, for template_find */
    size_t count;
};

/* What a tag between {{ and }} turned out to be. */
enum tag_kind {
    TAG_VARIABLE,
    TAG_SECTION,
    TAG_INVERTED,
    TAG_CLOSE,
    TAG_COMMENT,
};

struct tag {
    enum tag_kind kind;
    size_t start;       /* offset of the opening {{ */
    size_t end;         /* offset just past the closing }} */
    size_t name_offset; /* the trimmed name, not for comments */
    size_t name_length;
};

/* Turns byte offsets into line and column; fastest when asked in increasing order. */
struct locator {
    const char *source;
    size_t offset;     /* every byte before this has been counted */
    size_t line;       /* the line offset is on */
    size_t line_start; /* offset of the first byte of that line */
};

struct parser {
    struct template *template;
    FILE *diag; /* where errors go; may be NULL */
    int errors; /* how many were written */
    struct locator locator;
    size_t node_capacity;
    size_t *open_sections; /* node indices of the sections not yet closed, innermost last */
    size_t open_count;
    size_t open_capacity;
};

/* Output under construction; data is always NUL-terminated once anything is appended. */
struct buffer {
    char *data;
    size_t length;
    size_t capacity;
};

static void locator_init(struct locator *locator, const char *source)
{
    *locator = (struct locator){.source = source, .offset = 0, .line = 1, .line_start = 0};
}

/* locator_find - the 1-based line and byte column of offset. */
static void locator_find(struct locator *locator, size_t offset, size_t *ret_line,
                         size_t *ret_column)
{
    if (offset < locator->offset)
        locator_init(locator, locator->source);
    for (; locator->offset < offset; locator->offset++) {
        if (locator->source[locator->offset] == '\n') {
            locator->line++;
            locator->line_start = locator->offset + 1;
        }
    }
    *ret_line = locator->line;
    *ret_column = offset - locator->line_start + 1;
}

static void diag_write(FILE *diag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void diag_write(FILE *diag, const char *fmt, ...)
{
    if (diag == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(diag, fmt, ap);
    va_end(ap);
    fputc('\n', diag);
}

static void parser_error(struct parser *parser, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* parser_error - write "FILE:LINE:COL: message" for the byte at offset. */
static void parser_error(struct parser *parser, size_t offset, const char *fmt, ...)
{
    size_t line, column;
    locator_find(&parser->locator, offset, &line, &column);
    va_list ap;
    va_start(ap, fmt);
    char *message = xvasprintf(fmt, ap);
    va_end(ap);
    diag_write(parser->diag, "%s:%zu:%zu: %s", parser->template->path, line, column, message);
    free(message);
    parser->errors++;
}

static struct node *parser_add_node(struct parser *parser, enum node_kind kind)
{
    struct template *template = parser->template;
    if (template->node_count == parser->node_capacity) {
        parser->node_capacity = parser->node_capacity ? 2 * parser->node_capacity : 16;
        template->nodes =
            xreallocarray(template->nodes, parser->node_capacity, sizeof(*template->nodes));
    }
    struct node *node = &template->nodes[template->node_count++];
    *node = (struct node){.kind = kind};
    return node;
}

static void parser_add_text(struct parser *parser, size_t offset, size_t length)
{
    if (length == 0)
        return;
    struct node *node = parser_add_node(parser, NODE_TEXT);
    node->offset = offset;
    node->length = length;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* name_valid - one or more segments of [A-Za-z0-9_-], joined by single dots. */
static bool name_valid(const char *name, size_t length)
{
    bool segment_empty = true;
    for (size_t i = 0; i < length; i++) {
        if (name[i] == '.') {
            if (segment_empty)
                return false;
            segment_empty = true;
        } else if (is_name_char(name[i])) {
            segment_empty = false;
        } else {
            return false;
        }
    }
    return !segment_empty;
}

/* find_close - offset of the first "}}" at or after from, or SIZE_MAX; stops at a line end
 * unless multi_line. */
static size_t find_close(const char *source, size_t length, size_t from, bool multi_line)
{
    for (size_t i = from; i + 1 < length; i++) {
        if (source[i] == '}' && source[i + 1] == '}')
            return i;
        if (source[i] == '\n' && !multi_line)
            return SIZE_MAX;
    }
    return SIZE_MAX;
}

/* line_end - offset of the '\n' ending the line that holds from, or length. */
static size_t line_end(const char *source, size_t length, size_t from)
{
    const char *newline = memchr(source + from, '\n', length - from);
    return newline == NULL ? length : (size_t)(newline - source);
}

/* The characters a tag may open with: the kind of tag each makes, or why it is refused. */
static const struct {
    char sigil;
    enum tag_kind kind;
    const char *refused;
} tag_sigils[] = {
    {'=', TAG_VARIABLE, "delimiter change '{{=' is not supported"},
    {'>', TAG_VARIABLE, "partial '{{>' is not supported"},
    {'&', TAG_VARIABLE, "unescaped variable '{{&' is not supported"},
    {'#', TAG_SECTION, NULL},
    {'^', TAG_INVERTED, NULL},
    {'/', TAG_CLOSE, NULL},
};

/* tag_triple - refuse the triple mustache at start; parsing resumes after its closing braces
 * (or at the end of its line when it has none). Always -EINVAL. */
static int tag_triple(struct parser *parser, size_t start, size_t *ret_resume)
{
    const char *source = parser->template->source;
    size_t length = parser->template->source_length;
    parser_error(parser, start, "triple mustache '{{{' is not supported");
    size_t close = find_close(source, length, start + 2, false);
    if (close == SIZE_MAX) {
        *ret_resume = line_end(source, length, start + 2);
    } else {
        close += 2;
        while (close < length && source[close] == '}')
            close++;
        *ret_resume = close;
    }
    return -EINVAL;
}

/*
 * tag_parse - read the tag whose {{ is at start. Returns 0 with *ret_tag filled, or -EINVAL
 * after writing the error, with *ret_resume set to where scanning should go on.
 */
static int tag_parse(struct parser *parser, size_t start, struct tag *ret_tag, size_t *ret_resume)
{
    const char *source = parser->template->source;
    size_t length = parser->template->source_length;
    size_t i = start + 2;

    if (i < length && source[i] == '{')
        return tag_triple(parser, start, ret_resume);
    while (i < length && is_blank(source[i]))
        i++;
    char sigil = i < length ? source[i] : '\0';

    if (sigil == '!') {
        size_t close = find_close(source, length, i + 1, true);
        if (close == SIZE_MAX) {
            parser_error(parser, start, "unterminated comment");
            *ret_resume = length;
            return -EINVAL;
        }
        *ret_tag = (struct tag){.kind = TAG_COMMENT, .start = start, .end = close + 2};
        return 0;
    }

    size_t close = find_close(source, length, i, false);
    if (close == SIZE_MAX) {
        parser_error(parser, start, "unterminated tag");
        *ret_resume = line_end(source, length, i);
        return -EINVAL;
    }
    *ret_resume = close + 2;

    enum tag_kind kind = TAG_VARIABLE;
    for (size_t k = 0; k < sizeof(tag_sigils) / sizeof(tag_sigils[0]); k++) {
        if (tag_sigils[k].sigil != sigil)
            continue;
        if (tag_sigils[k].refused) {
            parser_error(parser, start, "%s", tag_sigils[k].refused);
            return -EINVAL;
        }
        kind = tag_sigils[k].kind;
        i++;
        break;
    }
    while (i < close && is_blank(source[i]))
        i++;
    size_t name_end = close;
    while (name_end > i && is_blank(source[name_end - 1]))
        name_end--;
    if (name_end == i) {
        parser_error(parser, start, "empty tag");
        return -EINVAL;
    }
    if (!name_valid(source + i, name_end - i)) {
        parser_error(parser, start, "invalid name '%.*s'", (int)(name_end - i), source + i);
        return -EINVAL;
    }
    *ret_tag = (struct tag){.kind = kind,
                            .start = start,
                            .end = close + 2,
                            .name_offset = i,
                            .name_length = name_end - i};
    return 0;
}

/*
 * tag_standalone - Mustache's standalone rule: a section, inverted, close or comment tag
 * alone on its line (blanks around it) takes the whole line with it, line end included.
 * Returns true with [*ret_line_start, *ret_next) the bytes the line occupies.
 */
static bool tag_standalone(const struct parser *parser, const struct tag *tag,
                           size_t *ret_line_start, size_t *ret_next)
{
    if (tag->kind == TAG_VARIABLE)
        return false;
    const char *source = parser->template->source;
    size_t length = parser->template->source_length;
    size_t before = tag->start;
    while (before > 0 && is_blank(source[before - 1]))
        before--;
    if (before > 0 && source[before - 1] != '\n')
        return false;
    size_t after = tag->end;
    while (after < length && is_blank(source[after]))
        after++;
    if (after < length && source[after] == '\n')
        after++;
    else if (after + 1 < length && source[after] == '\r' && source[after + 1] == '\n')
        after += 2;
    else if (after < length)
        return false;
    *ret_line_start = before;
    *ret_next = after;
    return true;
}

static const char *section_sigil(const struct node *node)
{
    return node->kind == NODE_INVERTED ? "^" : "#";
}

/* parser_close - a {{/name}}: end the innermost open section, which must be name. */
static void parser_close(struct parser *parser, const struct tag *tag)
{
    const char *name = parser->template->source + tag->name_offset;
    int name_length = (int)tag->name_length;
    struct node *nodes = parser->template->nodes;

    if (parser->open_count == 0) {
        parser_error(parser, tag->start, "{{/%.*s}} closes no open section", name_length, name);
        return;
    }
    size_t depth = parser->open_count;
    while (depth > 0) {
        const struct node *open = &nodes[parser->open_sections[depth - 1]];
        if (strlen(open->name) == tag->name_length &&
            memcmp(open->name, name, tag->name_length) == 0)
            break;
        depth--;
    }
    struct node *innermost = &nodes[parser->open_sections[parser->open_count - 1]];
    if (depth == 0) {
        parser_error(parser, tag->start,
                     "{{/%.*s}} does not match the open section {{%s%s}} at %zu:%zu", name_length,
                     name, section_sigil(innermost), innermost->name, innermost->line,
                     innermost->column);
        return;
    }
    if (depth != parser->open_count)
        parser_error(parser, tag->start,
                     "{{/%.*s}} closes '%.*s' while {{%s%s}} at %zu:%zu is open", name_length, name,
                     name_length, name, section_sigil(innermost), innermost->name, innermost->line,
                     innermost->column);
    /* close the named section and any left open inside it, so later errors are real ones */
    while (parser->open_count >= depth) {
        nodes[parser->open_sections[parser->open_count - 1]].end = parser->template->node_count;
        parser->open_count--;
    }
}

static void parser_tag(struct parser *parser, const struct tag *tag)
{
    if (tag->kind == TAG_COMMENT)
        return;
    if (tag->kind == TAG_CLOSE) {
        parser_close(parser, tag);
        return;
    }
    enum node_kind kind = tag->kind == TAG_SECTION    ? NODE_SECTION
                          : tag->kind == TAG_INVERTED ? NODE_INVERTED
                                                      : NODE_VARIABLE;
    size_t index = parser->template->node_count;
    struct node *node = parser_add_node(parser, kind);
    node->name = xstrndup(parser->template->source + tag->name_offset, tag->name_length);
    locator_find(&parser->locator, tag->start, &node->line, &node->column);
    if (kind == NODE_VARIABLE)
        return;
    if (parser->open_count == parser->open_capacity) {
        parser->open_capacity = parser->open_capacity ? 2 * parser->open_capacity : 8;
        parser->open_sections = xreallocarray(parser->open_sections, parser->open_capacity,
                                              sizeof(*parser->open_sections));
    }
    parser->open_sections[parser->open_count++] = index;
}

/* template_parse - the source into nodes; every error goes to diag. Returns the count. */
static int template_parse(struct template *template, FILE *diag)
{
    struct parser parser = {.template = template, .diag = diag};
    locator_init(&parser.locator, template->source);
    const char *source = template->source;
    size_t length = template->source_length;
    size_t text_start = 0; /* bytes from here to the next tag are text */
    size_t offset = 0;     /* where to look for the next tag */

    for (;;) {
        const char *open = memmem(source + offset, length - offset, "{{", 2);
        if (open == NULL)
            break;
        size_t start = (size_t)(open - source);
        struct tag tag;
        size_t resume;
        if (tag_parse(&parser, start, &tag, &resume) < 0) {
            offset = resume; /* the set will not load; keep going only to find more errors */
            continue;
        }
        size_t line_start, next;
        if (tag_standalone(&parser, &tag, &line_start, &next)) {
            parser_add_text(&parser, text_start, line_start - text_start);
            offset = next;
        } else {
            parser_add_text(&parser, text_start, start - text_start);
            offset = tag.end;
        }
        text_start = offset;
        parser_tag(&parser, &tag);
    }
    parser_add_text(&parser, text_start, length - text_start);

    for (size_t i = 0; i < parser.open_count; i++) {
        struct node *open = &template->nodes[parser.open_sections[i]];
        open->end = template->node_count;
        diag_write(diag, "%s:%zu:%zu: unclosed section {{%s%s}}", template->path, open->line,
                   open->column, section_sigil(open), open->name);
        parser.errors++;
    }
    free(parser.open_sections);
    return parser.errors;
}

/* utf8_first_invalid - offset of the first byte that does not start a valid UTF-8
 * sequence, or SIZE_MAX if all are valid. */
static size_t utf8_first_invalid(const char *source, size_t length)
{
    if (utf8_valid(source, length))
        return SIZE_MAX;
    size_t i = 0;
    while (i < length) {
        if ((unsigned char)source[i] < 0x80) {
            i++;
            continue;
        }
        size_t sequence = 0;
        for (size_t k = 2; k <= 4 && i + k <= length; k++) {
            if (utf8_valid(source + i, k)) {
                sequence = k;
                break;
            }
        }
        if (sequence == 0)
            return i;
        i += sequence;
    }
    return SIZE_MAX;
}

/* template_check_bytes - UTF-8 and no NUL; writes the first problem to diag. */
static int template_check_bytes(const struct template *template, FILE *diag)
{
    struct locator locator;
    size_t line, column;
    locator_init(&locator, template->source);
    size_t bad = utf8_first_invalid(template->source, template->source_length);
    if (bad != SIZE_MAX) {
        locator_find(&locator, bad, &line, &column);
        diag_write(diag, "%s:%zu:%zu: not valid UTF-8", template->path, line, column);
        return -EILSEQ;
    }
    const char *nul = memchr(template->source, '\0', template->source_length);
    if (nul != NULL) {
        locator_find(&locator, (size_t)(nul - template->source), &line, &column);
        diag_write(diag, "%s:%zu:%zu: NUL byte", template->path, line, column);
        return -EILSEQ;
    }
    return 0;
}

static struct template *template_free(struct template *template)
{
    if (template == NULL)
        return NULL;
    for (size_t i = 0; i < template->node_count; i++)
        free(template->nodes[i].name);
    FREE_MANY(template->nodes, template->source, template->path, template->name);
    free(template);
    return NULL;
}

/* file_read - a regular file of at most TEMPLATE_SIZE_MAX bytes, NUL-terminated. */
static int file_read(int dir_fd, const char *name, const char *path, FILE *diag, char **ret_data,
                     size_t *ret_length)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int error = errno;
        diag_write(diag, "%s: %s", path, strerror(error));
        return -error;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        diag_write(diag, "%s: not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    /* read one byte past the limit, so a file that grew since fstat is still caught */
    size_t capacity =
        (size_t)st.st_size < TEMPLATE_SIZE_MAX ? (size_t)st.st_size + 1 : TEMPLATE_SIZE_MAX + 1;
    char *data = xmalloc(capacity + 1);
    size_t length = 0;
    for (;;) {
        if (length == capacity) {
            if (capacity > TEMPLATE_SIZE_MAX)
                break;
            capacity = capacity * 2 > TEMPLATE_SIZE_MAX ? TEMPLATE_SIZE_MAX + 1 : capacity * 2;
            data = xrealloc(data, capacity + 1);
        }
        ssize_t n = read(fd, data + length, capacity - length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int error = errno;
            diag_write(diag, "%s: %s", path, strerror(error));
            free(data);
            close(fd);
            return -error;
        }
        if (n == 0)
            break;
        length += (size_t)n;
    }
    close(fd);
    if (length > TEMPLATE_SIZE_MAX) {
        diag_write(diag, "%s: larger than 1 MiB", path);
        free(data);
        return -EFBIG;
    }
    data[length] = '\0';
    *ret_data = data;
    *ret_length = length;
    return 0;
}

/* path_join - "dir/name", without doubling a slash that ends dir. */
static char *path_join(const char *dir, const char *name)
{
    size_t dir_length = strlen(dir);
    while (dir_length > 1 && dir[dir_length - 1] == '/')
        dir_length--;
    return xasprintf("%.*s/%s", (int)dir_length, dir, name);
}

/* template_load - read and parse one file; NULL after writing its errors to diag. */
static struct template *template_load(int dir_fd, const char *dir, const char *name, FILE *diag)
{
    struct template *template = xcalloc(1, sizeof(*template));
    template->name = xstrdup(name);
    template->path = path_join(dir, name);
    if (file_read(dir_fd, name, template->path, diag, &template->source, &template->source_length) <
        0)
        return template_free(template);
    if (template_check_bytes(template, diag) < 0)
        return template_free(template);
    if (template_parse(template, diag) > 0)
        return template_free(template);
    return template;
}

/* template_parse_text - one template from memory (tests and fuzzing): the same checks as a
 * file in a set. */
int template_parse_text(const char *name, const char *text, size_t length, FILE *diag,
                        struct template **ret_template)
{
    struct template *template = xcalloc(1, sizeof(*template));
    template->name = xstrdup(name);
    template->path = xstrdup(name);
    template->source = xmalloc(length + 1);
    memcpy(template->source, text, length);
    template->source[length] = '\0';
    template->source_length = length;
    int r = template_check_bytes(template, diag);
    if (r == 0 && template_parse(template, diag) > 0)
        r = -EINVAL;
    if (r < 0) {
        template_free(template);
        return r;
    }
    *ret_template = template;
    return 0;
}

void template_destroy(struct template *template)
{
    template_free(template);
}

/*
 * name_classify - does name have the form BASE[.REGION].EXT? 1 if it does, 0 if it is no
 * template's name (skipped), -EINVAL (written to diag) for a region not in upper case.
 */
static int name_classify(const char *dir, const char *name, FILE *diag)
{
    const char *extension = strrchr(name, '.');
    if (extension == NULL || extension == name || extension[1] == '\0')
        return 0;
    size_t stem_length = (size_t)(extension - name);
    const char *region = NULL;
    for (size_t i = stem_length; i > 0; i--) {
        if (name[i - 1] == '.') {
            region = name + i;
            break;
        }
    }
    if (region == NULL || extension - region != 2)
        return 1; /* BASE.EXT, or a BASE with dots of its own */
    bool letters = true, upper = true;
    for (int i = 0; i < 2; i++) {
        char c = region[i];
        letters = letters && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
        upper = upper && c >= 'A' && c <= 'Z';
    }
    if (letters && !upper) {
        char *path = path_join(dir, name);
        diag_write(diag, "%s: region '%.2s' must be two upper-case letters", path, region);
        free(path);
        return -EINVAL;
    }
    return 1;
}

static int string_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int template_name_compare(const void *a, const void *b)
{
    const struct template *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* directory_names - the names in dir that may be templates, sorted. */
static int directory_names(DIR *directory, const char *dir, FILE *diag, char ***ret_names,
                           size_t *ret_count, int *errors)
{
    char **names = NULL;
    size_t count = 0, capacity = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(directory);
        if (entry == NULL)
            break;
        const char *name = entry->d_name;
        size_t length = strlen(name);
        if (name[0] == '.' || name[length - 1] == '~')
            continue;
        struct stat st;
        if (fstatat(dirfd(directory), name, &st, 0) < 0) {
            int error = errno;
            char *path = path_join(dir, name);
            diag_write(diag, "%s: %s", path, strerror(error));
            free(path);
            (*errors)++;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        int kind = name_classify(dir, name, diag);
        if (kind < 0)
            (*errors)++;
        if (kind <= 0)
            continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            names = xreallocarray(names, capacity, sizeof(*names));
        }
        names[count++] = xstrdup(name);
    }
    if (errno != 0) {
        int error = errno;
        diag_write(diag, "%s: %s", dir, strerror(error));
        for (size_t i = 0; i < count; i++)
            free(names[i]);
        free(names);
        return -ENOENT;
    }
    if (count > 0)
        qsort(names, count, sizeof(*names), string_compare);
    *ret_names = names;
    *ret_count = count;
    return 0;
}

/* set_finish - a loaded set, sorted by name (whatever order its names came in), into
 * *ret_set; -EINVAL and nothing when any template had errors (said on diag already). */
static int set_finish(struct template_set *set, int errors, struct template_set **ret_set)
{
    if (errors > 0) {
        template_set_free(set);
        return -EINVAL;
    }
    if (set->count > 0)
        qsort(set->templates, set->count, sizeof(*set->templates), template_name_compare);
    *ret_set = set;
    return 0;
}

int template_set_load(const char *dir, FILE *diag, struct template_set **ret_set)
{
    DIR *directory = opendir(dir);
    if (directory == NULL) {
        diag_write(diag, "%s: %s", dir, strerror(errno));
        return -ENOENT;
    }
    int errors = 0;
    char **names = NULL;
    size_t count = 0;
    int rc = directory_names(directory, dir, diag, &names, &count, &errors);
    if (rc < 0) {
        closedir(directory);
        return rc;
    }

    struct template_set *set = xcalloc(1, sizeof(*set));
    set->templates = xcalloc(count, sizeof(*set->templates));
    for (size_t i = 0; i < count; i++) {
        struct template *template = template_load(dirfd(directory), dir, names[i], diag);
        if (template == NULL)
            errors++;
        else
            set->templates[set->count++] = template;
        free(names[i]);
    }
    free(names);
    closedir(directory);

    return set_finish(set, errors, ret_set);
}

int template_set_from_memory(const char *dir, char *const *names, char *const *sources,
                             const size_t *lengths, size_t count, FILE *diag,
                             struct template_set **ret_set)
{
    struct template_set *set = xcalloc(1, sizeof(*set));
    set->templates = xcalloc(count, sizeof(*set->templates));
    int errors = 0;
    for (size_t i = 0; i < count; i++) {
        if (name_classify(dir, names[i], diag) <= 0) {
            errors++;
            continue;
        }
        struct template *template = xcalloc(1, sizeof(*template));
        template->name = xstrdup(names[i]);
        template->path = path_join(dir, names[i]);
        template->source = xmalloc(lengths[i] + 1);
        memcpy(template->source, sources[i], lengths[i]);
        template->source[lengths[i]] = '\0';
        template->source_length = lengths[i];
        if (lengths[i] > TEMPLATE_SIZE_MAX || template_check_bytes(template, diag) < 0 ||
            template_parse(template, diag) > 0) {
            template_free(template);
            errors++;
            continue;
        }
        set->templates[set->count++] = template;
    }
    return set_finish(set, errors, ret_set);
}

size_t template_set_count(const struct template_set *set)
{
    return set ? set->count : 0;
}

const struct template *template_set_item(const struct template_set *set, size_t i)
{
    return i < set->count ? set->templates[i] : NULL;
}

const char *template_name(const struct template *template)
{
    return template->name;
}

const char *template_source(const struct template *template, size_t *ret_length)
{
    *ret_length = template->source_length;
    return template->source;
}

struct template_set *template_set_free(struct template_set *set)
{
    if (set == NULL)
        return NULL;
    for (size_t i = 0; i < set->count; i++)
        template_free(set->templates[i]);
    free(set->templates);
    free(set);
    return NULL;
}

static const struct template *template_set_get(const struct template_set *set, const char *name)
{
    size_t low = 0, high = set->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int order = strcmp(name, set->templates[middle]->name);
        if (order == 0)
            return set->templates[middle];
        if (order < 0)
            high = middle;
        else
            low = middle + 1;
    }
    return NULL;
}

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool ascii_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const struct template *template_find(const struct template_set *set, const char *name,
                                     const char *region)
{
    const char *extension = strrchr(name, '.');
    /* regions compare without case: the recipient list may hold "ca" */
    if (region != NULL && ascii_letter(region[0]) && ascii_letter(region[1]) && region[2] == '\0' &&
        extension != NULL && extension != name) {
        char *regional = xasprintf("%.*s.%c%c%s", (int)(extension - name), name,
                                   ascii_upper(region[0]), ascii_upper(region[1]), extension);
        const struct template *found = template_set_get(set, regional);
        free(regional);
        if (found != NULL)
            return found;
    }
    return template_set_get(set, name);
}

const char *template_path(const struct template *template)
{
    return template->path;
}

/* vars_lookup - the value of a dotted name in vars, or NULL when any part is missing. */
static const json_t *vars_lookup(const json_t *vars, const char *name)
{
    const json_t *value = vars;
    const char *segment = name;
    for (;;) {
        const char *dot = strchr(segment, '.');
        size_t length = dot != NULL ? (size_t)(dot - segment) : strlen(segment);
        if (!json_is_object(value))
            return NULL;
        value = json_object_getn(value, segment, length);
        if (value == NULL || dot == NULL)
            return value;
        segment = dot + 1;
    }
}

/* value_truthy - a section's flag: false, null, "", 0 and [] are false, all else true. */
static bool value_truthy(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_STRING:
        return json_string_length(value) > 0;
    case JSON_INTEGER:
        return json_integer_value(value) != 0;
    case JSON_REAL:
        return json_real_value(value) != 0.0;
    case JSON_ARRAY:
        return json_array_size(value) > 0;
    default:
        return true;
    }
}

static void buffer_append(struct buffer *buffer, const char *bytes, size_t length)
{
    if (buffer->length + length + 1 > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 256;
        while (capacity < buffer->length + length + 1)
            capacity *= 2;
        buffer->data = xrealloc(buffer->data, capacity);
        buffer->capacity = capacity;
    }
    if (length > 0)
        memcpy(buffer->data + buffer->length, bytes, length);
    buffer->length += length;
    buffer->data[buffer->length] = '\0';
}

/* buffer_append_html - bytes with & < > " ' as entities. */
static void buffer_append_html(struct buffer *buffer, const char *bytes, size_t length)
{
    size_t run = 0; /* start of the bytes not yet appended */
    for (size_t i = 0; i < length; i++) {
        const char *entity;
        switch (bytes[i]) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        default:
            continue;
        }
        buffer_append(buffer, bytes + run, i - run);
        buffer_append(buffer, entity, strlen(entity));
        run = i + 1;
    }
    buffer_append(buffer, bytes + run, length - run);
}

/* value_append - a value as text; -EINVAL for booleans, objects and arrays. */
static int value_append(struct buffer *buffer, const json_t *value, bool html)
{
    char number[64];
    const char *text;
    size_t length;
    switch (json_typeof(value)) {
    case JSON_NULL:
        return 0;
    case JSON_STRING:
        text = json_string_value(value);
        length = json_string_length(value);
        break;
    case JSON_INTEGER:
        snprintf(number, sizeof(number), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        text = number;
        length = strlen(number);
        break;
    case JSON_REAL:
        snprintf(number, sizeof(number), "%.15g", json_real_value(value));
        text = number;
        length = strlen(number);
        break;
    default:
        return -EINVAL;
    }
    if (html)
        buffer_append_html(buffer, text, length);
    else
        buffer_append(buffer, text, length);
    return 0;
}

/* render_error - "FILE:LINE:COL: ..." for node: unknown, or not a text value. */
static void render_error(const struct template *template, const struct node *node, bool unknown,
                         char *err, size_t err_size)
{
    if (err == NULL || err_size == 0)
        return;
    if (unknown)
        snprintf(err, err_size, "%s:%zu:%zu: unknown variable '%s'", template->path, node->line,
                 node->column, node->name);
    else
        snprintf(err, err_size, "%s:%zu:%zu: '%s' is not a text value", template->path, node->line,
                 node->column, node->name);
}

int template_render(const struct template *template, const json_t *vars, bool html, char **ret_text,
                    size_t *ret_len, char *err, size_t err_size)
{
    struct buffer out = {0};
    size_t i = 0;
    while (i < template->node_count) {
        const struct node *node = &template->nodes[i];
        if (node->kind == NODE_TEXT) {
            buffer_append(&out, template->source + node->offset, node->length);
            i++;
            continue;
        }
        const json_t *value = vars_lookup(vars, node->name);
        if (value == NULL) {
            render_error(template, node, true, err, err_size);
            free(out.data);
            return -ENOENT;
        }
        if (node->kind == NODE_VARIABLE) {
            if (value_append(&out, value, html) < 0) {
                render_error(template, node, false, err, err_size);
                free(out.data);
                return -EINVAL;
            }
            i++;
            continue;
        }
        /* a section's body follows it directly: go into it, or jump past it */
        bool render_body = value_truthy(value) == (node->kind == NODE_SECTION);
        i = render_body ? i + 1 : node->end;
    }
    buffer_append(&out, "", 0);
    *ret_text = out.data;
    *ret_len = out.length;
    return 0;
}

int template_set_check(const struct template_set *set, const json_t *known, FILE *diag)
{
    int unknown = 0;
    for (size_t t = 0; t < set->count; t++) {
        const struct template *template = set->templates[t];
        for (size_t i = 0; i < template->node_count; i++) {
            const struct node *node = &template->nodes[i];
            if (node->kind == NODE_TEXT || vars_lookup(known, node->name) != NULL)
                continue;
            diag_write(diag, "%s:%zu:%zu: unknown variable '%s'", template->path, node->line,
                       node->column, node->name);
            unknown++;
        }
    }
    return unknown > 0 ? -ENOENT : 0;
}

const char **template_set_names(const struct template_set *set)
{
    const char **names = xcalloc(set->count + 1, sizeof(*names));
    for (size_t i = 0; i < set->count; i++)
        names[i] = set->templates[i]->name;
    names[set->count] = NULL;
    return names;
}
