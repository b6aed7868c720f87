/* net_sink.c: the peer of pvhost --net socket:PATH for boots that only need the NIC present: swallow every frame, run one command */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * usage: net_sink PATH COMMAND [ARGS...]
 *
 * pvhost's socket backend connects to a SOCK_SEQPACKET socket that its
 * peer already listens on (backends/net_backend.c).  We listen at PATH,
 * start COMMAND (which should name socket:PATH), accept its connection,
 * read and drop whatever it sends (we send nothing, so the guest's NIC
 * sees no traffic and its registers stay as its driver left them), and
 * exit with COMMAND's status (128 + signal if it was killed).  The count
 * of frames dropped goes to stderr.  PATH is removed at the end.
 */

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd, cfd = -1, status;
	unsigned long frames = 0;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: net_sink PATH COMMAND [ARGS...]\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "net_sink: socket path too long: %s\n", argv[1]);
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0) {
		fprintf(stderr, "net_sink: listen on %s failed: %s\n", sa.sun_path, strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "net_sink: fork failed: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "net_sink: exec %s failed: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	for (;;) {
		struct pollfd p = {.fd = cfd >= 0 ? cfd : lfd, .events = POLLIN};
		char frame[16384];

		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (poll(&p, 1, 100) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (cfd < 0) {
			cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			continue;
		}
		if (recv(cfd, frame, sizeof frame, 0) > 0) {
			frames++;
		} else {
			/* the command closed its end: wait for it to exit */
			close(cfd);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
	}
	unlink(sa.sun_path);
	fprintf(stderr, "net_sink: %lu frames dropped\n", frames);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
