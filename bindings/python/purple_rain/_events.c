/* The binding's two hot paths in C, where a Python frame per event would dominate.
 *
 * events(): builds a poll page's `Event` objects in C: one allocation per field and one per event,
 * instead of the several Python-level steps per event a pure-Python loop costs (the poll rate
 * of a consumer that wants objects is bound by exactly this).
 *
 * It reads the flat arrays `prpy_packed` (the cffi extension) filled; Python passes their
 * addresses and keeps the buffers alive for the call. Limited API (abi3), Python 3.9+. */
#define Py_LIMITED_API 0x03090000
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "purple_rain.h"

/* The slot that allocates an `event_type` instance, after checking it is a tuple subclass. */
static allocfunc event_alloc(PyObject *type) {
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "event_type must be a tuple subclass");
        return NULL;
    }
    return (allocfunc)PyType_GetSlot((PyTypeObject *)type, Py_tp_alloc);
}

/* Fields of an `Event`: payload, id, shard, sequence, timestamp_ns, origin. */
#define EVENT_FIELDS 6

/* Stores the event made of `fields` (new references, any of them NULL after a failed
 * constructor) at `list[i]`. Returns 0, or -1 with an exception set and `fields` released. */
static int put_event(PyObject *list, Py_ssize_t i, PyObject *type, allocfunc alloc,
                     PyObject *fields[EVENT_FIELDS]) {
    PyObject *event = NULL;
    int complete = 1;
    for (int f = 0; f < EVENT_FIELDS; f++) complete = complete && fields[f] != NULL;
    if (complete) event = alloc((PyTypeObject *)type, EVENT_FIELDS);
    if (event == NULL) {
        for (int f = 0; f < EVENT_FIELDS; f++) Py_XDECREF(fields[f]);
        return -1;
    }
    for (int f = 0; f < EVENT_FIELDS; f++) PyTuple_SetItem(event, f, fields[f]); /* steals */
    /* Only bytes, str and ints inside: the tuple can be in no cycle, so the collector need not
       scan it (CPython untracks such tuples itself, at its next collection). */
    PyObject_GC_UnTrack(event);
    PyList_SetItem(list, i, event); /* steals */
    return 0;
}

/* events(event_type, n, data, ends, ids, shards, sequences, timestamps, origins) -> list
 * `event_type` is a tuple subclass of the EVENT_FIELDS fields; the others are the element count
 * and the buffers' addresses. */
static PyObject *events(PyObject *self, PyObject *args) {
    PyObject *type;
    Py_ssize_t n;
    unsigned long long data_a, ends_a, ids_a, shards_a, seqs_a, ts_a, origins_a;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnKKKKKKK", &type, &n, &data_a, &ends_a, &ids_a, &shards_a,
                          &seqs_a, &ts_a, &origins_a))
        return NULL;
    allocfunc alloc = event_alloc(type);
    if (alloc == NULL) return NULL;
    const char *data = (const char *)(uintptr_t)data_a;
    const uint32_t *ends = (const uint32_t *)(uintptr_t)ends_a;
    const char *ids = (const char *)(uintptr_t)ids_a;
    const uint16_t *shards = (const uint16_t *)(uintptr_t)shards_a;
    const uint64_t *seqs = (const uint64_t *)(uintptr_t)seqs_a;
    const uint64_t *ts = (const uint64_t *)(uintptr_t)ts_a;
    const uint64_t *origins = (const uint64_t *)(uintptr_t)origins_a;

    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    uint32_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t id_len = strlen(ids);
        PyObject *fields[EVENT_FIELDS] = {
            PyBytes_FromStringAndSize(data + start, (Py_ssize_t)(ends[i] - start)),
            PyUnicode_FromStringAndSize(ids, (Py_ssize_t)id_len),
            PyLong_FromLong(shards[i]),
            PyLong_FromUnsignedLongLong(seqs[i]),
            PyLong_FromUnsignedLongLong(ts[i]),
            PyLong_FromUnsignedLongLong(origins[i]),
        };
        start = ends[i];
        ids += id_len + 1;
        if (put_event(list, (Py_ssize_t)i, type, alloc, fields) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

/* ingest_raw(bus_address, bus_keepalive, fallback, error, data[, key]) -> None
 * `Bus.ingest_raw` is a `functools.partial` of this with the first four bound: a `bytes`
 * event without a key goes to `pr_ingest_raw` with no Python frame in between (the GIL is
 * released around the call; `data` is immutable and `args` references it meanwhile). A
 * failure raises `error(status)` (the exception with this thread's message). Anything else (a
 * key, another buffer type) goes to `fallback(bus_keepalive, data[, key], **kwargs)`, the Python
 * implementation. `bus_keepalive` is the cffi handle: bound in the partial, it keeps the bus
 * alive as long as the partial is. */
static PyObject *ingest_raw(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    Py_ssize_t n = PyTuple_Size(args);
    if (n < 5) {
        PyErr_SetString(PyExc_TypeError, "ingest_raw() missing the event");
        return NULL;
    }
    PyObject *data = PyTuple_GetItem(args, 4);
    int plain = n == 5 && (kwargs == NULL || PyDict_Size(kwargs) == 0);
    if (plain && PyBytes_Check(data)) {
        void *bus = PyLong_AsVoidPtr(PyTuple_GetItem(args, 0));
        if (bus == NULL && PyErr_Occurred()) return NULL;
        char *buf;
        Py_ssize_t len;
        if (PyBytes_AsStringAndSize(data, &buf, &len) < 0) return NULL;
        pr_status rc;
        Py_BEGIN_ALLOW_THREADS
        rc = pr_ingest_raw((const pr_bus *)bus, (const uint8_t *)buf, (size_t)len);
        Py_END_ALLOW_THREADS
        if (rc == PR_OK) Py_RETURN_NONE;
        PyObject *exc = PyObject_CallFunction(PyTuple_GetItem(args, 3), "I", (unsigned)rc);
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    PyObject *call_args = PyTuple_New(n - 3); /* (keepalive, data[, key]) */
    if (call_args == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n - 3; i++) {
        PyObject *item = PyTuple_GetItem(args, i == 0 ? 1 : i + 3);
        Py_INCREF(item);
        PyTuple_SetItem(call_args, i, item);
    }
    PyObject *result = PyObject_Call(PyTuple_GetItem(args, 2), call_args, kwargs);
    Py_DECREF(call_args);
    return result;
}

/* page_events(event_type, result_address) -> list
 * The events of a live `pr_poll_result` (the caller frees it afterwards), built straight from
 * its views: each payload is copied once, into its `bytes`. */
static PyObject *page_events(PyObject *self, PyObject *args) {
    PyObject *type;
    unsigned long long result_a;
    (void)self;
    if (!PyArg_ParseTuple(args, "OK", &type, &result_a)) return NULL;
    allocfunc alloc = event_alloc(type);
    if (alloc == NULL) return NULL;
    const pr_poll_result *result = (const pr_poll_result *)(uintptr_t)result_a;
    size_t n = pr_poll_result_len(result);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        pr_event_view v;
        if (pr_poll_result_event(result, i, &v) != PR_OK) {
            PyErr_SetString(PyExc_RuntimeError, "pr_poll_result_event failed inside the page");
            Py_DECREF(list);
            return NULL;
        }
        PyObject *fields[EVENT_FIELDS] = {
            PyBytes_FromStringAndSize((const char *)v.payload, (Py_ssize_t)v.payload_len),
            PyUnicode_FromString(v.id),
            PyLong_FromLong(v.shard),
            PyLong_FromUnsignedLongLong(v.sequence),
            PyLong_FromUnsignedLongLong(v.timestamp_ns),
            PyLong_FromUnsignedLongLong(v.origin),
        };
        if (put_event(list, (Py_ssize_t)i, type, alloc, fields) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

static PyMethodDef methods[] = {
    {"page_events", page_events, METH_VARARGS, "Builds the Event tuples of a live poll result."},
    {"events", events, METH_VARARGS, "Builds a page's Event tuples from its flat arrays."},
    {"ingest_raw", (PyCFunction)(void (*)(void))ingest_raw, METH_VARARGS | METH_KEYWORDS,
     "pr_ingest_raw for a bytes event, else fallback."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_events", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__events(void) { return PyModule_Create(&module); }
