/*
 * map_text.c - the "texthash:" table type: the text source itself, read
 * into memory when the table is opened, like Postfix's texthash. There is
 * no compile step (map_build only checks the file), which suits tests and
 * small tables. The file is read again when it changes.
 *
 * The whole file is parsed with the postmap rules (map_source.h); any error
 * makes the open fail, so a half-understood table is never used. Entries are
 * kept sorted and found by binary search.
 */
#include "mail/map_int.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int texthash_open(struct map *m, strbuf *err)
{
    if (m->flags & MAP_ALIASES) {
        strbuf_appends(err, "texthash tables hold \"key value\" lines and cannot read the "
                            "aliases syntax; use a hash: table built by newaliases");
        return -1;
    }
    /* Identity first: if the file is replaced while being read, the next
     * lookup sees a different identity and reads it again. */
    struct stat st;
    if (stat(m->file, &st) != 0) {
        strbuf_printf(err, "cannot open %s: %s", m->file, strerror(errno));
        return -1;
    }
    struct map_entries *e = xmalloc(sizeof(*e));
    map_entries_init(e);
    strbuf errors;
    strbuf_init(&errors);
    int n = map_source_read_pairs(m->file, MAP_TEXT_MAX_FILE, e, &errors);
    if (n > 0) {
        /* Report the first problem; map_build (petrel map) lists them all. */
        size_t first = strcspn(errors.data, "\n");
        strbuf_printf(err, "%d error%s in the source, the first: %.*s", n, n == 1 ? "" : "s",
                      (int)first, errors.data);
        strbuf_free(&errors);
        map_entries_free(e);
        free(e);
        return -1;
    }
    strbuf_free(&errors);
    map_entries_dedupe(e, m->file);
    map_file_id_from_stat(&m->id, &st);
    m->priv = e;
    return 0;
}

static enum map_status texthash_lookup(struct map *m, const char *key, size_t keylen,
                                       strbuf *value, strbuf *err)
{
    (void)err;
    const struct map_entries *e = m->priv;
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct map_entry *me = &e->v[mid];
        size_t n = me->key_len < keylen ? me->key_len : keylen;
        int c = memcmp(me->key, key, n);
        if (c == 0)
            c = (me->key_len > keylen) - (me->key_len < keylen);
        if (c == 0) {
            strbuf_set(value, me->value, me->value_len);
            return MAP_FOUND;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return MAP_NOTFOUND;
}

static void texthash_close(struct map *m)
{
    struct map_entries *e = m->priv;
    map_entries_free(e);
    free(e);
    m->priv = NULL;
}

const struct map_type map_type_texthash = {
    .name = "texthash",
    .suffix = "",
    .open = texthash_open,
    .lookup = texthash_lookup,
    .close = texthash_close,
    .build = NULL,
};
