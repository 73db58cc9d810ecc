/*
 * main.c: the command line (portcullis(8), OPTIONS and COMMANDS).
 *
 *   portcullis [-c FILE]       run in the foreground
 *   portcullis -d [-c FILE]    run as a classic daemon
 *   portcullis -t [-c FILE]    validate the configuration
 *   portcullis [-c FILE] reload|status|stop|quit|upgrade|reopen
 *   portcullis [-c FILE] status --json
 *   portcullis [-c FILE] drain|enable BACKEND SERVER
 *   portcullis [-c FILE] check   keepalived's health check
 *                              ask the running master (server/cli.h)
 *   portcullis -V | -h
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "config/config.h"
#include "server/conf.h"
#include "server/cli.h"
#include "server/master.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: portcullis [-d] [-c FILE]    run (foreground unless -d)\n"
		"       portcullis -t [-c FILE]      check the configuration and exit\n"
		"       portcullis [-c FILE] COMMAND ask the running master, over\n"
		"                                    control_socket, and wait:\n"
		"           reload    load the configuration again; exit 0 once the\n"
		"                     new generation serves, 1 with the errors if not\n"
		"           status    generations, workers, listeners, backends\n"
		"           status --json   the same and the counters, as JSON\n"
		"           stop      fast stop        quit      graceful stop\n"
		"           upgrade   start the binary again on the same sockets\n"
		"           reopen    reopen the log files (for logrotate)\n"
		"           check     exit 0 if the serving generation accepts,\n"
		"                     1 with the reason if not (keepalived)\n"
		"           drain BACKEND SERVER   no new requests to SERVER\n"
		"           enable BACKEND SERVER  put it back in rotation\n"
		"       portcullis -V                print the version\n"
		"       portcullis -h                print this help\n"
		"\n"
		"  -c FILE   configuration file (default %s)\n"
		"  -d        detach and write pid_file\n"
		"\n"
		"signals to the master: HUP reload, TERM/INT fast stop, QUIT graceful stop,\n"
		"USR1 reopen log files, USR2 binary upgrade\n",
		CONFIG_DEFAULT_PATH);
}

/* -t: every error as FILE:LINE:COL: message, or "configuration OK". */
static int check_config(const char *path)
{
	struct config_errors errs = {0};
	struct config *cfg = conf_load(path, &errs);

	if (cfg == NULL) {
		for (size_t i = 0; i < errs.count && i < CONFIG_MAX_ERRORS; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		if (errs.count > CONFIG_MAX_ERRORS)
			fprintf(stderr, "%s: %zu more errors not shown\n", path,
				errs.count - CONFIG_MAX_ERRORS);
		config_errors_clear(&errs);
		return 1;
	}
	config_free(cfg);
	printf("configuration OK\n");
	return 0;
}

/*
 * portcullis [-c FILE] COMMAND [ARGS]: talk to the running master over
 * its control socket.  drain and enable take BACKEND SERVER; the others
 * take nothing.
 */
static int run_command(const struct master_opts *opts, int argc, char **argv,
		       bool test_only, bool is_json)
{
	bool takes_server = strcmp(argv[0], "drain") == 0 ||
			    strcmp(argv[0], "enable") == 0;
	char cmd[512];

	if (is_json && argc == 1 && strcmp(argv[0], "status") == 0 &&
	    !test_only && !opts->daemonize)
		return cli_run(opts->config_path, "status --json");
	if (is_json || test_only || opts->daemonize || !cli_is_command(argv[0]) ||
	    argc != (takes_server ? 3 : 1)) {
		fprintf(stderr, "portcullis: unknown command or wrong "
				"arguments: '%s'\n",
			argv[0]);
		usage(stderr);
		return 2;
	}
	if (!takes_server)
		return cli_run(opts->config_path, argv[0]);
	snprintf(cmd, sizeof(cmd), "%s %s %s", argv[0], argv[1], argv[2]);
	return cli_run(opts->config_path, cmd);
}

int main(int argc, char **argv)
{
	struct master_opts opts = {.config_path = CONFIG_DEFAULT_PATH};
	bool test_only = false;
	char abs_path[PATH_MAX];
	bool is_json = false;
	int ch;

	/* "status --json": the one long option, taken out before getopt */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			is_json = true;
			memmove(&argv[i], &argv[i + 1],
				(size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	while ((ch = getopt(argc, argv, "c:dtVh")) != -1) {
		switch (ch) {
		case 'c': opts.config_path = optarg; break;
		case 'd': opts.daemonize = true; break;
		case 't': test_only = true; break;
		case 'V': printf("portcullis %s\n", PORTCULLIS_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return run_command(&opts, argc - optind, argv + optind,
				   test_only, is_json);
	if (is_json) {
		fprintf(stderr, "portcullis: --json goes with status\n");
		usage(stderr);
		return 2;
	}
	if (test_only)
		return check_config(opts.config_path);
	/* reloads re-read the file after -d changed directory to / */
	if (realpath(opts.config_path, abs_path) != NULL)
		opts.config_path = abs_path;
	return master_run(&opts);
}
