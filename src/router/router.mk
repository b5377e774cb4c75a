# src/router/router.mk -- nx-router, its unit test and its fuzz target;
# included by the top-level Makefile (paths are relative to the repository
# root).  Also usable alone: make -f src/router/router.mk ...
#
#   make build/nx-router       the router (links libpq)
#   make router-unit-test      build and run src/router/test_http_head.c and
#                              test_http_frame.c
#   make fuzz-http-head        fuzz the head parser for $(FUZZ_SECONDS) s
#                              (default 600)
#   make fuzz-http-head-smoke  the same for 30 s
#   make fuzz-http-frame       fuzz head + body framing of request and
#                              response streams (fuzz_http_frame.c)
#   make fuzz-http-frame-smoke the same for 30 s
#   make build/nx-router-asan  the router with ASan+UBSan (for the TAP test)
#
# Neither PGXS nor the server is involved: the router is a libpq client.

ROUTER_CC ?= gcc
ROUTER_CFLAGS ?= -std=gnu99 -O2 -g -Wall -Wextra -Werror -Wmissing-prototypes \
	-Wdeclaration-after-statement
ROUTER_PG_INCLUDEDIR := $(shell pg_config --includedir)
ROUTER_PG_LIBDIR := $(shell pg_config --libdir)
ROUTER_CPPFLAGS = -Isrc/include -Isrc/router -I$(ROUTER_PG_INCLUDEDIR)
ROUTER_TEST_FLAGS = -std=gnu99 -g -O1 -Wall -Wextra -Werror \
	-fsanitize=address,undefined -fno-sanitize-recover=all

ROUTER_SRC = src/router/router.c src/router/conn.c src/router/routes.c \
	src/router/handoff.c src/router/activity.c src/router/jail.c src/router/http_head.c \
	src/router/http_frame.c src/router/pool.c src/router/clients.c src/router/util.c \
	src/router/pglink.c src/router/wake_report.c
ROUTER_HDR = src/router/router.h src/router/pglink.h src/router/http_head.h src/router/http_frame.h src/include/nx_handoff.h

ROUTER_FUZZ_CC ?= clang
FUZZ_SECONDS ?= 600
ROUTER_FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
ROUTER_FUZZ_CORPUS = build/fuzz-http-head-corpus

.PHONY: router-unit-test fuzz-http-head fuzz-http-head-smoke fuzz-http-frame fuzz-http-frame-smoke

all: build/nx-router

build/nx-router: $(ROUTER_SRC) $(ROUTER_HDR)
	@mkdir -p build
	$(ROUTER_CC) $(ROUTER_CFLAGS) $(ROUTER_CPPFLAGS) $(ROUTER_SRC) \
		-L$(ROUTER_PG_LIBDIR) -lpq -lseccomp -o $@

build/test_http_head: src/router/test_http_head.c src/router/http_head.c src/router/http_head.h
	@mkdir -p build
	$(ROUTER_CC) $(ROUTER_TEST_FLAGS) -Isrc/router src/router/test_http_head.c \
		src/router/http_head.c -o $@

build/test_http_frame: src/router/test_http_frame.c src/router/http_frame.c src/router/http_head.c \
		src/router/http_frame.h src/router/http_head.h
	@mkdir -p build
	$(ROUTER_CC) $(ROUTER_TEST_FLAGS) -Isrc/router src/router/test_http_frame.c \
		src/router/http_frame.c src/router/http_head.c -o $@

router-unit-test: build/test_http_head build/test_http_frame
	build/test_http_head
	build/test_http_frame

build/fuzz_http_head: src/router/fuzz_http_head.c src/router/http_head.c src/router/http_head.h
	@mkdir -p build
	$(ROUTER_FUZZ_CC) $(ROUTER_FUZZ_FLAGS) -Isrc/router src/router/fuzz_http_head.c \
		src/router/http_head.c -o $@

# the working corpus starts from a few well-formed and broken heads and
# keeps growing across runs in build/
$(ROUTER_FUZZ_CORPUS):
	@mkdir -p $@
	printf '\001\001GET / HTTP/1.1\r\nHost: App.Localhost.:8080\r\n\r\n' > $@/seed-get
	printf '\007\001POST /x?y HTTP/1.0\r\nHost: [::1]:80\r\nContent-Length: 3\r\n\r\nabc' > $@/seed-post
	printf '\003\001\r\nGET / HTTP/1.1\r\nX-A: b\r\nHost:  x.preview.localhost \r\n\r\n' > $@/seed-empty-line
	printf '\002\010GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' > $@/seed-two-hosts
	printf '\001\001GET / HTTP/1.1\n\n' > $@/seed-bare-lf

fuzz-http-head: build/fuzz_http_head $(ROUTER_FUZZ_CORPUS)
	build/fuzz_http_head -max_total_time=$(FUZZ_SECONDS) -max_len=70000 \
		-artifact_prefix=build/ -print_final_stats=1 $(ROUTER_FUZZ_CORPUS)

fuzz-http-head-smoke:
	$(MAKE) -f src/router/router.mk fuzz-http-head FUZZ_SECONDS=30

build/fuzz_http_frame: src/router/fuzz_http_frame.c src/router/http_frame.c src/router/http_head.c \
		src/router/http_frame.h src/router/http_head.h
	@mkdir -p build
	$(ROUTER_FUZZ_CC) $(ROUTER_FUZZ_FLAGS) -Isrc/router src/router/fuzz_http_frame.c \
		src/router/http_frame.c src/router/http_head.c -o $@

# requests (mode byte 0) and responses (1; 3: to a HEAD request), with
# every framing: Content-Length, chunked with extensions and trailers,
# none, close-delimited, pipelined messages, and the smuggling cases
ROUTER_FRAME_CORPUS = build/fuzz-http-frame-corpus
$(ROUTER_FRAME_CORPUS):
	@mkdir -p $@
	printf '\001\000POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: b\r\n\r\n' > $@/seed-cl-pipelined
	printf '\003\000POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n' > $@/seed-chunked
	printf '\002\000POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' > $@/seed-cl-te
	printf '\005\001HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n' > $@/seed-resp
	printf '\007\001HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest' > $@/seed-resp-chunked
	printf '\001\003HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n' > $@/seed-resp-head

fuzz-http-frame: build/fuzz_http_frame $(ROUTER_FRAME_CORPUS)
	build/fuzz_http_frame -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
		-artifact_prefix=build/ -print_final_stats=1 $(ROUTER_FRAME_CORPUS)

fuzz-http-frame-smoke:
	$(MAKE) -f src/router/router.mk fuzz-http-frame FUZZ_SECONDS=30

# the router under AddressSanitizer + UndefinedBehaviorSanitizer, for the
# TAP test: NX_ROUTER=build/nx-router-asan make installcheck ...
# (NX_ROUTER_SANITIZER_BUILD: its jail leaves LeakSanitizer the clone and
# ptrace it needs at exit; see jail.c)
build/nx-router-asan: $(ROUTER_SRC) $(ROUTER_HDR)
	@mkdir -p build
	$(ROUTER_CC) $(ROUTER_TEST_FLAGS) -DNX_ROUTER_SANITIZER_BUILD $(ROUTER_CPPFLAGS) $(ROUTER_SRC) \
		-L$(ROUTER_PG_LIBDIR) -lpq -lseccomp -o $@
