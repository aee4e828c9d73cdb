/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SVG pictures for people: the heatmap of dirty regions (one cell per
 * 2 MiB region, or per group of regions in a large guest) and the
 * working-set curve D(T) on a logarithmic time axis.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dt_util.h"
#include "http.h"
#include "json_view.h"
#include "manager.h"
#include "vm_query.h"

#define HEAT_MAX_CELLS 4096
#define HEAT_COLS 64
#define HEAT_CELL 10

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static int finish(FILE *f, char **buf, size_t *len, char **ret, size_t *ret_len)
{
	if (fclose(f) != 0 || !*buf) {
		free(*buf);
		return -ENOMEM;
	}
	*ret = *buf;
	*ret_len = *len;
	return 0;
}

/* White (clean) through yellow to red (every page of the cell dirtied). */
static void heat_color(double x, char out[8])
{
	unsigned r = 255, g, b;

	x = x < 0 ? 0 : x > 1 ? 1 : x;
	if (x < 0.5) {
		g = 255;
		b = (unsigned)(255 * (1 - 2 * x));
	} else {
		g = (unsigned)(255 * (2 - 2 * x));
		b = 0;
	}
	snprintf(out, 8, "#%02x%02x%02x", r, g, b);
}

int dt_svg_heatmap(const struct dt_vm *vm, uint32_t window, char **ret, size_t *ret_len)
{
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	uint64_t regions = (dt_vm_index_pages(vm) + sc->region_pages - 1) / sc->region_pages;
	uint64_t group, cells, rows;
	uint64_t *pages = NULL;
	struct dt_heat *h = NULL;
	char *buf = NULL;
	size_t n = 0, len = 0;
	unsigned width, height;
	FILE *f;
	int r;

	window = DT_MIN(window, sc->horizon_epochs);
	if (regions == 0)
		regions = 1;
	group = (regions + HEAT_MAX_CELLS - 1) / HEAT_MAX_CELLS;
	cells = (regions + group - 1) / group;
	rows = (cells + HEAT_COLS - 1) / HEAT_COLS;
	r = dt_vm_heat(vm, window, 0, SIZE_MAX, &h, &n);
	if (r < 0)
		return r;
	pages = calloc(cells, sizeof(*pages));
	if (!pages) {
		free(h);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (h[i].region / group < cells)
			pages[h[i].region / group] += h[i].pages;
	free(h);

	width = HEAT_COLS * HEAT_CELL + 20;
	height = (unsigned)rows * HEAT_CELL + 70;
	f = open_memstream(&buf, &len);
	if (!f) {
		free(pages);
		return -ENOMEM;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
		"viewBox=\"0 0 %u %u\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n<text x=\"10\" "
		"y=\"18\">VM %u (",
		width, height, width, height, vm->id);
	xml_text(f, vm->name);
	fprintf(f,
		"): pages dirtied per %" PRIu64 " MiB over the last %.1f s</text>\n"
		"<g transform=\"translate(10,28)\" stroke=\"#d0d0d0\" stroke-width=\"0.5\">\n",
		((uint64_t)sc->region_pages << vm->page_shift) * group >> 20,
		window * (double)vm->epoch_us / 1e6);
	for (uint64_t i = 0; i < cells; i++) {
		double frac = (double)pages[i] / ((double)sc->region_pages * group);
		char color[8];

		heat_color(frac, color);
		fprintf(f,
			"<rect x=\"%" PRIu64 "\" y=\"%" PRIu64 "\" width=\"%u\" height=\"%u\" "
			"fill=\"%s\"/>\n",
			(i % HEAT_COLS) * HEAT_CELL, (i / HEAT_COLS) * HEAT_CELL, HEAT_CELL,
			HEAT_CELL, pages[i] ? color : "#f4f4f4");
	}
	free(pages);
	fprintf(f, "</g>\n<text x=\"10\" y=\"%u\">clean", height - 16);
	for (unsigned i = 0; i <= 10; i++) {
		char color[8];

		heat_color(i / 10.0, color);
		fprintf(f, "<tspan fill=\"%s\">&#9632;</tspan>", i ? color : "#f4f4f4");
	}
	fprintf(f, " every page</text>\n</svg>\n");
	return finish(f, &buf, &len, ret, ret_len);
}

int dt_svg_wss(const struct dt_vm *vm, char **ret, size_t *ret_len)
{
	const struct dt_stats_config *sc = dt_stats_config(vm->stats);
	const unsigned W = 640, H = 360, L = 80, R = 20, T = 40, B = 50;
	double es = (double)vm->epoch_us / 1e6, xmin, xmax, ymax = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	xmin = log10(sc->windows[0] * es);
	xmax = log10(sc->windows[sc->nwindows - 1] * es);
	if (xmax - xmin < 1e-9)
		xmax = xmin + 1;
	for (uint32_t i = 0; i < sc->nwindows; i++)
		ymax = fmax(ymax, (double)(dt_stats_wss(vm->stats, sc->windows[i]) << vm->page_shift));
	if (ymax <= 0)
		ymax = 1;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
		"viewBox=\"0 0 %u %u\" font-family=\"sans-serif\" font-size=\"12\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
		"<text x=\"%u\" y=\"24\">VM %u (",
		W, H, W, H, L, vm->id);
	xml_text(f, vm->name);
	fprintf(f, "): working set D(T)</text>\n");
	/* Axes, y ticks in MiB, x ticks at each window. */
	fprintf(f,
		"<g stroke=\"#000000\"><line x1=\"%u\" y1=\"%u\" x2=\"%u\" y2=\"%u\"/>"
		"<line x1=\"%u\" y1=\"%u\" x2=\"%u\" y2=\"%u\"/></g>\n",
		L, H - B, W - R, H - B, L, T, L, H - B);
	for (unsigned i = 0; i <= 4; i++) {
		double y = H - B - (double)(H - B - T) * i / 4;
		fprintf(f,
			"<line x1=\"%u\" y1=\"%.1f\" x2=\"%u\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
			"<text x=\"%u\" y=\"%.1f\" text-anchor=\"end\">%.1f MiB</text>\n",
			L, y, W - R, y, L - 6, y + 4, ymax * i / 4 / 1048576.0);
	}
	fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
	for (uint32_t i = 0; i < sc->nwindows; i++) {
		double t = sc->windows[i] * es;
		double x = L + (W - L - R) * (log10(t) - xmin) / (xmax - xmin);
		double y = H - B -
			   (H - B - T) *
				   (double)(dt_stats_wss(vm->stats, sc->windows[i]) << vm->page_shift) /
				   ymax;
		fprintf(f, "%.1f,%.1f ", x, y);
	}
	fprintf(f, "\"/>\n");
	for (uint32_t i = 0; i < sc->nwindows; i++) {
		double t = sc->windows[i] * es;
		double x = L + (W - L - R) * (log10(t) - xmin) / (xmax - xmin);
		double y = H - B -
			   (H - B - T) *
				   (double)(dt_stats_wss(vm->stats, sc->windows[i]) << vm->page_shift) /
				   ymax;
		fprintf(f,
			"<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f77b4\"/>"
			"<text x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">%gs</text>\n",
			x, y, x, H - B + 18, t);
	}
	fprintf(f, "<text x=\"%u\" y=\"%u\" text-anchor=\"middle\">window T (log scale)</text>\n"
		   "</svg>\n",
		(W + L) / 2, H - 10);
	return finish(f, &buf, &len, ret, ret_len);
}
