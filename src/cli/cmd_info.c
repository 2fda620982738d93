/* cmd_info.c - `lipsync info MODEL.onnx`: what a model holds and costs. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "nn/lower.h"
#include "nn/onnx.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: lipsync info MODEL.onnx [--batch B]\n\n"
            "Prints the model's inputs and outputs, its ONNX op counts, the compute nodes\n"
            "left after lowering and fusion, its parameter count and its convolution\n"
            "multiply-accumulates per item. --batch picks the batch size lowered for\n"
            "(default: the model's fixed batch, else 1).\n");
}

static void print_io(const char *kind, const ls_onnx_io *io)
{
    printf("  %-6s %-20s [", kind, io->name);
    for (int d = 0; d < io->ndim; d++) {
        if (d) printf(",");
        if (io->dims[d] > 0) printf("%" PRId64, io->dims[d]);
        else printf("%s", io->dim_names[d] ? io->dim_names[d] : "?");
    }
    printf("%s]\n", io->ndim < 0 ? "unknown" : "");
}

/* "12186935" -> "12,186,935" */
static const char *grouped(int64_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRId64, v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0 && digits[i - 1] != '-') buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = 0;
    return buf;
}

static void print_onnx_ops(const ls_onnx_model *m)
{
    int n = ls_onnx_n_nodes(m);
    printf("onnx nodes: %d\n ", n);
    /* Distinct op types in first-appearance order, each with its count. */
    for (int i = 0; i < n; i++) {
        const char *op = ls_onnx_node_op(m, i);
        int seen = 0, count = 0;
        for (int k = 0; k < i && !seen; k++) seen = !strcmp(ls_onnx_node_op(m, k), op);
        if (seen) continue;
        for (int k = i; k < n; k++) count += !strcmp(ls_onnx_node_op(m, k), op);
        printf(" %s %d", op, count);
    }
    printf("\n");
}

static void print_graph_ops(const ls_graph *g)
{
    static const char *names[] = {"Conv", "BatchNormalization", "Relu",   "Sigmoid", "Add",
                                  "Concat", "Resize",          "Pad", "Reshape"};
    int counts[9] = {0}, relu = 0, sigmoid = 0, residual = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ls_node *n = &g->nodes[i];
        counts[n->op]++;
        if (n->op == LS_OP_CONV) {
            relu += n->attr.conv.fuse_relu;
            sigmoid += n->attr.conv.fuse_sigmoid;
            residual += n->attr.conv.residual >= 0;
        }
    }
    printf("compute nodes (batch %d, after passes): %d\n ", g->batch, g->n_nodes);
    for (int op = 0; op < 9; op++) {
        if (!counts[op]) continue;
        printf(" %s %d", names[op], counts[op]);
        if (op == LS_OP_CONV)
            printf(" (+relu %d, +sigmoid %d, +residual add %d)", relu, sigmoid, residual);
    }
    printf("\n");
}

int cmd_info(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL;
    int batch = 0, c;
    static const struct option opts[] = {{"batch", required_argument, 0, 'b'}, {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (c != 'b') return cli_option_error("info", c, argv);
        if ((batch = cli_parse_int("--batch", optarg, 1, 4096)) < 0) return 2;
    }
    if (optind == argc) return cli_missing("info", "MODEL.onnx");
    if (optind < argc - 1) return cli_unexpected("info", argv[optind + 1]);
    path = argv[optind];
    ls_error err = {0};
    ls_onnx_model *m;
    if (ls_onnx_load(path, &m, &err)) return cli_fail("info", &err);
    if (!batch) batch = ls_onnx_fixed_batch(m) ? ls_onnx_fixed_batch(m) : 1;
    printf("model: %s\n  producer %s, opset %d\n", path, ls_onnx_producer(m), ls_onnx_opset(m));
    for (int i = 0; i < ls_onnx_n_inputs(m); i++) print_io("input", ls_onnx_input(m, i));
    for (int i = 0; i < ls_onnx_n_outputs(m); i++) print_io("output", ls_onnx_output(m, i));
    print_onnx_ops(m);
    char buf[48];
    printf("parameters: %s\n", grouped(ls_onnx_param_count(m), buf, sizeof buf));
    ls_graph *g;
    int rc = ls_graph_build(m, batch, &g, &err);
    ls_onnx_destroy(m);
    if (rc) return cli_fail("info", &err);
    print_graph_ops(g);
    int64_t macs = ls_graph_conv_macs(g) / g->batch;
    printf("MACs per item: %s (%.3f GMAC)\n", grouped(macs, buf, sizeof buf), (double)macs * 1e-9);
    ls_graph_destroy(g);
    return 0;
}
