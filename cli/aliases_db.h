/*
 * aliases_db.h - rebuilding alias_database, shared by `newaliases`
 * (sendmail -bi) and `petrel newaliases`.
 */
#ifndef PETREL_CLI_ALIASES_DB_H
#define PETREL_CLI_ALIASES_DB_H

struct config;

/* Builds every table of alias_database from its aliases file; problems go
 * to stderr as file:line: message with `prog` naming the command. Returns 0
 * or 1. */
int aliases_db_rebuild(struct config *cfg, const char *prog);

#endif
