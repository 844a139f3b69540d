/*
 * auth_query.c - test tool (bin/auth-query): asks the auth service through
 * lib/mail/auth_client, so the integration tests check the C client and
 * the service against each other (the other auth tests speak the protocol
 * from Python).
 *
 *   auth-query QUEUE_DIR password SERVICE CLIENT USER [token] < password
 *   auth-query QUEUE_DIR redeem SERVICE TOKEN
 *
 * The password is standard input as is (no newline is stripped). Prints
 * one `name=value` line per result field; exits 0 when the service
 * answered, 1 when it could not be asked, 2 on bad usage.
 */
#include "mail/auth_client.h"
#include "util/strbuf.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *status_name(enum auth_status s)
{
    switch (s) {
    case AUTH_OK:
        return "ok";
    case AUTH_FAIL:
        return "fail";
    case AUTH_THROTTLED:
        return "throttled";
    default:
        return "tempfail";
    }
}

int main(int argc, char **argv)
{
    struct auth_result r;
    auth_result_init(&r);
    int rc;
    if (argc >= 6 && strcmp(argv[2], "password") == 0) {
        strbuf pw;
        strbuf_init(&pw);
        char buf[4096];
        ssize_t n;
        while ((n = read(0, buf, sizeof(buf))) > 0)
            strbuf_append(&pw, buf, (size_t)n);
        bool token = argc > 6 && strcmp(argv[6], "token") == 0;
        rc = auth_verify_password(argv[1], argv[3], argv[4], argv[5], pw.data, pw.len, token, &r);
        strbuf_free(&pw);
    } else if (argc == 5 && strcmp(argv[2], "redeem") == 0) {
        rc = auth_redeem_token(argv[1], argv[3], argv[4], &r);
    } else {
        fprintf(stderr, "usage: auth-query QUEUE_DIR password SERVICE CLIENT USER [token] < pw\n"
                        "       auth-query QUEUE_DIR redeem SERVICE TOKEN\n");
        return 2;
    }
    printf("status=%s\nuser=%s\nreason=%s\n", status_name(r.status), r.user.data, r.reason.data);
    if (r.token.len)
        printf("token=%s\n", r.token.data);
    if (r.home.len)
        printf("uid=%u\ngid=%u\nhome=%s\nmailbox=%s\n", (unsigned)r.uid, (unsigned)r.gid,
               r.home.data, r.mailbox.data);
    auth_result_free(&r);
    return rc < 0 ? 1 : 0;
}
