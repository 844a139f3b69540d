/*
 * sendmail_smtp.c - `sendmail -bs`: an SMTP dialogue on standard input and
 * output, for programs that speak SMTP to a local MTA. The same SMTP engine
 * as smtpd answers; accepted messages go into maildrop/ like any other
 * sendmail message (pickup takes it from there). Every recipient is
 * accepted here: the caller is local, and delivery decides.
 */
#include "sendmail.h"
#include "smtp/queue_sink.h"
#include "smtp/server.h"
#include "util/config.h"
#include "util/netio.h"

#include <string.h>

struct bs_ctx {
    struct sendmail_ctx *sc;
    struct queue_sink sink;
    struct queue_sink_client client;
};

static void bs_data_start(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          struct smtp_reply *r)
{
    (void)s;
    struct bs_ctx *b = ctx;
    queue_sink_begin(&b->sink, env, &b->client, r);
}

static int bs_data_chunk(void *ctx, struct smtp_session *s, const char *p, size_t n,
                         struct smtp_reply *r)
{
    (void)s;
    struct bs_ctx *b = ctx;
    return queue_sink_write(&b->sink, p, n, r);
}

static void bs_data_end(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                        struct smtp_reply *r)
{
    (void)s;
    struct bs_ctx *b = ctx;
    queue_sink_commit(&b->sink, env, &b->client, r);
}

static void bs_data_abort(void *ctx, struct smtp_session *s, const struct smtp_envelope *env,
                          const char *reason)
{
    (void)s;
    (void)env;
    struct bs_ctx *b = ctx;
    queue_sink_abort(&b->sink, reason);
}

int sendmail_smtp(struct sendmail_ctx *sc)
{
    static const struct smtp_server_ops ops = {
        .on_data_start = bs_data_start,
        .on_data_chunk = bs_data_chunk,
        .on_data_end = bs_data_end,
        .on_data_abort = bs_data_abort,
    };
    struct bs_ctx b;
    memset(&b, 0, sizeof(b));
    b.sc = sc;
    strbuf who;
    strbuf_init(&who);
    strbuf_printf(&who, "%s@localhost", sc->user);
    b.client.name = "localhost";
    b.client.addr = "127.0.0.1";
    b.client.log_name = who.data;
    queue_sink_init(&b.sink, sc->queue_dir, sc->myhostname, config_get(sc->cfg, "mail_name"));
    queue_sink_use_maildrop(&b.sink);
    struct smtp_server_config cfg = {
        .hostname = sc->myhostname,
        .client = who.data,
        .size_limit = (uint64_t)sc->size_limit,
        .pregreet_ms = -1, /* a pipe: the client may well write first */
        .pipelining = true,
        .eightbitmime = true,
        .smtputf8 = true,
        .dsn = true,
        .chunking = true,
    };
    struct netio *io = netio_new_fds(0, 1);
    enum smtp_end end = smtp_server_run(io, &cfg, &ops, &b);
    netio_free(&io);
    queue_sink_free(&b.sink);
    strbuf_free(&who);
    return end == SMTP_END_QUIT || end == SMTP_END_DISCONNECT ? 0 : EXIT_TEMPFAIL;
}
