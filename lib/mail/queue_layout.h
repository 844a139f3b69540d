/*
 * queue_layout.h - the queue directory tree with its owners and modes.
 *
 * One table (queue_layout.c) says which subdirectory of queue_directory is
 * owned by whom and with which mode; master creates missing directories from
 * it at start, `petrel check` reports every difference, and
 * `petrel set-permissions` repairs them. See docs/queue.md.
 */
#ifndef PETREL_QUEUE_LAYOUT_H
#define PETREL_QUEUE_LAYOUT_H

#include <sys/types.h>

struct strbuf;

/* Who owns what. For an instance run by an ordinary user, every field is
 * that user's uid/gid. */
struct queue_owners {
    uid_t root_uid;
    gid_t root_gid;
    uid_t owner_uid;  /* mail_owner (petrel) */
    gid_t owner_gid;
    gid_t drop_gid;   /* setgid_group (petreldrop): may write maildrop/, reach public/ */
};

enum queue_layout_action {
    QUEUE_LAYOUT_CHECK,  /* report missing or wrong entries, change nothing */
    QUEUE_LAYOUT_CREATE, /* create what is missing; report wrong owners/modes */
    QUEUE_LAYOUT_FIX,    /* create what is missing and repair owners/modes */
};

/* queue_layout_apply: walks the table for queue_dir. Each problem found (or
 * failed repair) is appended to problems as one "path: message\n" line;
 * returns their number. A symlink where a directory belongs is always a
 * problem and is never followed or replaced. */
int queue_layout_apply(const char *queue_dir, const struct queue_owners *owners,
                       enum queue_layout_action action, struct strbuf *problems);

/* queue_layout_owners_self: owners for a non-root instance (all the caller). */
void queue_layout_owners_self(struct queue_owners *owners);
/* queue_layout_owners: the owners for this process: looks up mail_owner and
 * setgid_group when running as root, or the caller's own ids otherwise.
 * Returns -1 with a message (and how to create the missing account) in err. */
int queue_layout_owners(const char *mail_owner, const char *setgid_group,
                        struct queue_owners *owners, struct strbuf *err);

#endif
