/*
 * argv_split.h - split a command line into an argv the way a POSIX shell
 * splits words, without running a shell and without any expansion.
 *
 * The rules are those config.c's check_command() validates for an exec
 * backend's `command`:
 *   - blanks (space, tab, CR, FF, VT) separate words;
 *   - '...' is literal: nothing is special inside single quotes;
 *   - "..." groups; inside it a backslash escapes the next character,
 *     whatever it is ("a\"b" -> a"b, "\\" -> \, "\x" -> x);
 *   - outside quotes a backslash escapes the next character (c\ d -> "c d");
 *   - quotes join with adjacent text (--a='b c' -> --a=b c), and '' or ""
 *     alone is an empty word;
 *   - nothing else is special: no $, `, globs, ~, ;, |, < or >.
 * Errors: an unterminated quote, a trailing backslash, no word at all, more
 * than ARGV_SPLIT_MAX_WORDS words or a line over ARGV_SPLIT_MAX_LEN bytes.
 */
#ifndef TRIAGED_ARGV_SPLIT_H
#define TRIAGED_ARGV_SPLIT_H

#include <stddef.h>

#define ARGV_SPLIT_MAX_WORDS 256
#define ARGV_SPLIT_MAX_LEN   65536

/* Split LINE into *ARGV (NULL-terminated, malloc'd, free with argv_free)
 * and *ARGC (may be NULL). 0; -EINVAL with the reason in ERR; -ENOMEM. */
int argv_split(const char *line, char ***argv, size_t *argc, char *err, size_t errlen);

/* Free an argv from argv_split. NULL-tolerant; returns NULL. */
char **argv_free(char **argv);

#endif
