/*
 * queue_list.c - see queue_list.h. Queue files are read with the same
 * validating reader the daemons use; a file that fails validation is listed
 * as unreadable, never trusted.
 */
#include "queue_list.h"
#include "mail/queue_file.h"
#include "mail/queue_id.h"
#include "util/strbuf.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dir_kind {
    const char *name;
    char mark; /* Postfix marks: '*' active, '!' on hold */
};

static const struct dir_kind dirs[] = {
    { "maildrop", ' ' }, { "incoming", ' ' }, { "active", '*' },
    { "deferred", ' ' }, { "hold", '!' },
};

/* The reason qmgr recorded for a deferred recipient (defer/<id>: lines of
 * "address<TAB>reason"), into out; false when there is none. */
static bool defer_reason(const char *queue_dir, const char *id, const char *addr, strbuf *out)
{
    strbuf path;
    strbuf_init(&path);
    strbuf_printf(&path, "%s/defer/%s", queue_dir, id);
    FILE *f = fopen(path.data, "r");
    strbuf_free(&path);
    if (f == NULL)
        return false;
    char line[8192];
    bool found = false;
    size_t al = strlen(addr);
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, addr, al) == 0 && line[al] == '\t') {
            line[strcspn(line, "\n")] = '\0';
            strbuf_sets(out, line + al + 1);
            found = true;
        }
    }
    fclose(f);
    return found;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

int queue_list(const char *queue_dir, FILE *out, bool json)
{
    unsigned long count = 0;
    unsigned long long bytes = 0;
    bool first = true;
    if (json)
        fputs("[", out);
    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        strbuf path;
        strbuf_init(&path);
        strbuf_printf(&path, "%s/%s", queue_dir, dirs[d].name);
        DIR *dh = opendir(path.data);
        if (dh == NULL) {
            int e = errno;
            if (e == EACCES) {
                fprintf(stderr,
                        "mailq: cannot read the queue (%s: permission denied); run it as root "
                        "or as the mail owner\n",
                        path.data);
                strbuf_free(&path);
                return 1;
            }
            strbuf_free(&path);
            continue;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(dh)) != NULL)
            if (queue_id_valid(de->d_name)) {
                names = realloc(names, (n + 1) * sizeof(*names));
                if (names == NULL)
                    abort();
                names[n++] = strdup(de->d_name);
            }
        closedir(dh);
        if (n > 1)
            qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
            strbuf file, err;
            strbuf_init(&file);
            strbuf_init(&err);
            strbuf_printf(&file, "%s/%s", path.data, names[i]);
            struct queue_file *qf;
            if (queue_file_open_readonly(file.data, &qf, &err) < 0) {
                if (!json)
                    fprintf(out, "%-22s  (unreadable queue file: %s)\n", names[i], err.data);
            } else {
                count++;
                bytes += qf->content_length;
                char when[64];
                time_t t = qf->arrival.tv_sec;
                struct tm tm;
                localtime_r(&t, &tm);
                strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
                if (json) {
                    fprintf(out, "%s\n {\"queue_name\": \"%s\", \"queue_id\": \"%s\", "
                                 "\"arrival_time\": %ld, \"message_size\": %llu, \"sender\": ",
                            first ? "" : ",", dirs[d].name, names[i], (long)t,
                            (unsigned long long)qf->content_length);
                    json_string(out, qf->sender);
                    fputs(", \"recipients\": [", out);
                    for (size_t r = 0; r < qf->rcpt_count; r++) {
                        fprintf(out, "%s{\"address\": ", r ? ", " : "");
                        json_string(out, qf->rcpts[r].address);
                        fprintf(out, ", \"status\": \"%s\"}",
                                queue_rcpt_status_name(qf->rcpts[r].status));
                    }
                    fputs("]}", out);
                    first = false;
                } else {
                    if (count == 1)
                        fputs("-Queue ID-             --Size-- ----Arrival Time---- "
                              "-Sender/Recipient-------\n",
                              out);
                    fprintf(out, "%s%c %8llu %s  %s\n", names[i], dirs[d].mark,
                            (unsigned long long)qf->content_length, when,
                            *qf->sender ? qf->sender : "MAILER-DAEMON");
                    for (size_t r = 0; r < qf->rcpt_count; r++) {
                        if (queue_rcpt_status_final(qf->rcpts[r].status))
                            continue;
                        if (qf->rcpts[r].status == QUEUE_RCPT_DEFERRED) {
                            unsigned tries = (unsigned)QUEUE_ATTEMPTS_COUNT(qf->attempts);
                            strbuf why;
                            strbuf_init(&why);
                            if (defer_reason(queue_dir, names[i], qf->rcpts[r].address, &why))
                                fprintf(out, "%48s(%s; %u attempt%s)\n", "", why.data, tries,
                                        tries == 1 ? "" : "s");
                            else
                                fprintf(out, "%48s(deferred after %u attempt%s)\n", "", tries,
                                        tries == 1 ? "" : "s");
                            strbuf_free(&why);
                        }
                        fprintf(out, "%48s%s\n", "", qf->rcpts[r].address);
                    }
                    fputc('\n', out);
                }
                queue_file_close(&qf);
            }
            strbuf_free(&file);
            strbuf_free(&err);
            free(names[i]);
        }
        free(names);
        strbuf_free(&path);
    }
    if (json)
        fputs("\n]\n", out);
    else if (count == 0)
        fputs("Mail queue is empty\n", out);
    else
        fprintf(out, "-- %llu Kbytes in %lu Request%s.\n", (bytes + 1023) / 1024, count,
                count == 1 ? "" : "s");
    return 0;
}
