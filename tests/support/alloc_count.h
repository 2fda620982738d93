/* alloc_count.h - counts heap allocations made by the whole process.
 *
 * Linked only into plain (unsanitized) test builds: it replaces malloc and
 * friends with wrappers around glibc's, counting every allocation from any
 * thread, including those made inside libraries we call. */
#ifndef LS_TEST_ALLOC_COUNT_H
#define LS_TEST_ALLOC_COUNT_H

long alloc_count(void);

#endif
