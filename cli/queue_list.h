/*
 * queue_list.h - the queue listing behind `mailq` (sendmail -bp) and
 * `petrel queue list`, in the format Postfix's mailq prints so existing
 * scripts keep working, or as JSON.
 */
#ifndef PETREL_CLI_QUEUE_LIST_H
#define PETREL_CLI_QUEUE_LIST_H

#include <stdbool.h>
#include <stdio.h>

/* Lists every message of queue_dir (maildrop, incoming, active, deferred,
 * hold) to out. Returns 0, or 1 after printing why on stderr (the queue
 * cannot be read: not root or the mail owner). */
int queue_list(const char *queue_dir, FILE *out, bool json);

#endif
