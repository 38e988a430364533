/*
 * fuzz_snapfile.c - libFuzzer target: gt_restore of an arbitrary file must
 * give an error code or a sound table, never a crash: the structural check
 * of the LMDB file (src/lmdbfile.c) must keep LMDB itself from reading
 * outside the file or tripping its assertions, whatever the bytes.
 *
 * The input is the file. Built against the library with GT_FUZZING (checksum
 * comparisons skipped), so mutated records also reach the loader's checks.
 * Whatever restores must pass gt_check. The restored table takes the
 * manifest's maxima, whatever they are (a table of 16M guilds costs a few
 * MB to create and check).
 *
 * GT_FUZZ_WRITE_SEEDS=DIR writes the seed corpus (small real snapshots) to
 * DIR and exits. Inputs are up to a few pages: run with -max_len=65536.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static char dir[64], path[128];

static void cleanup(void) {
    unlink(path);
    rmdir(dir);
}

static void write_seeds(const char *out) {
    mkdir(out, 0755);
    const int shapes[][3] = {{0, 0, 0}, {1, 3, 0}, {2, 20, 8}, {3, 60, 13}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        gt_options o = {.dir = dir, .max_members = 1000, .max_guilds = 8,
                        .payload_size = (uint32_t)shapes[i][2],
                        .flags = GT_CREATE | GT_EXCL};
        gt_table *t;
        if (gt_open("seed", &o, &t))
            exit(1);
        for (int g = 1; g <= shapes[i][0]; g++)
            for (int u = 1; u <= shapes[i][1]; u++) {
                gt_member m = {.user_id = (uint64_t)u * 31, .session_id = (uint64_t)u,
                               .flags = GT_ONLINE | (u % 2 ? GT_ACTIVE : 0)};
                uint8_t pay[16] = {(uint8_t)u};
                gt_insert(t, (uint64_t)g << 40 | (uint64_t)g, &m, pay);
            }
        char p[512];
        snprintf(p, sizeof p, "%s/seed-%zu", out, i);
        if (gt_snapshot(t, p, NULL, NULL))
            exit(1);
        gt_close(t);
        gt_unlink("seed", dir);
    }
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "/dev/shm/gt-fuzzfile-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/in.gts", dir);
    const char *out = getenv("GT_FUZZ_WRITE_SEEDS");
    if (out)
        write_seeds(out);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    gt_options o = {.dir = dir};
    if (gt_restore(path, "fuzz", &o, NULL, NULL) == 0) {
        gt_table *t;
        if (gt_open("fuzz", &o, &t) == 0) {
            if (gt_check(t, NULL) != 0)
                abort(); /* whatever restores must be a sound table */
            gt_close(t);
        }
        gt_unlink("fuzz", dir);
    }
    return 0;
}
