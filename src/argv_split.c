/*
 * argv_split.c - shell-like word splitting of an exec backend's command.
 *
 * DESIGN: one pass over the line with a two-state machine (outside quotes,
 * inside '…' or "…"); each word is built in a buffer as long as the line
 * (a word never grows longer than its source), then copied out. The rules
 * are the ones config.c's check_command() accepts (see argv_split.h), so a
 * command that passed --check-config always splits.
 */
#include "argv_split.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v' ||
	       ch == '\n';
}

char **argv_free(char **argv)
{
	char **a;

	if (!argv)
		return NULL;
	for (a = argv; *a; a++)
		free(*a);
	free(argv);
	return NULL;
}

int argv_split(const char *line, char ***argvp, size_t *argcp, char *err, size_t errlen)
{
	char **argv = NULL, *word = NULL;
	size_t argc = 0, wlen = 0, len;
	bool in_word = false;
	char quote = 0;
	const char *s;
	int r = 0;

	if (argvp)
		*argvp = NULL;
	if (argcp)
		*argcp = 0;
	if (!line || !argvp) {
		snprintf(err, errlen, "no command");
		return -EINVAL;
	}
	len = strlen(line);
	if (len > ARGV_SPLIT_MAX_LEN) {
		snprintf(err, errlen, "command longer than %d bytes", ARGV_SPLIT_MAX_LEN);
		return -EINVAL;
	}
	word = malloc(len + 1);
	argv = calloc(ARGV_SPLIT_MAX_WORDS + 1, sizeof(*argv));
	if (!word || !argv) {
		r = -ENOMEM;
		goto out;
	}

	for (s = line;; s++) {
		char ch = *s;

		if (quote) {
			if (!ch) {
				snprintf(err, errlen, "unterminated %c quote", quote);
				r = -EINVAL;
				goto out;
			}
			if (ch == quote) {
				quote = 0;
			} else if (quote == '"' && ch == '\\' && s[1]) {
				word[wlen++] = *++s;
			} else {
				word[wlen++] = ch;
			}
			continue;
		}
		if (!ch || is_blank(ch)) {
			if (in_word) {
				if (argc >= ARGV_SPLIT_MAX_WORDS) {
					snprintf(err, errlen, "more than %d words",
					         ARGV_SPLIT_MAX_WORDS);
					r = -EINVAL;
					goto out;
				}
				argv[argc] = strndup(word, wlen);
				if (!argv[argc]) {
					r = -ENOMEM;
					goto out;
				}
				argc++;
				wlen = 0;
				in_word = false;
			}
			if (!ch)
				break;
			continue;
		}
		in_word = true;
		if (ch == '\'' || ch == '"') {
			quote = ch;
		} else if (ch == '\\') {
			if (!s[1]) {
				snprintf(err, errlen, "ends with a backslash");
				r = -EINVAL;
				goto out;
			}
			word[wlen++] = *++s;
		} else {
			word[wlen++] = ch;
		}
	}
	if (argc == 0) {
		snprintf(err, errlen, "names no program");
		r = -EINVAL;
		goto out;
	}
	*argvp = argv;
	if (argcp)
		*argcp = argc;
	argv = NULL;
out:
	free(word);
	argv_free(argv);
	return r;
}
