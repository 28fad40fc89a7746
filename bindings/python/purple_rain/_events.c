/* Builds a poll page's `Event` objects in C: one allocation per field and one per event,
 * instead of the several Python-level steps per event a pure-Python loop costs (the poll rate
 * of a consumer that wants objects is bound by exactly this).
 *
 * It reads the flat arrays `prpy_packed` (the cffi extension) filled; Python passes their
 * addresses and keeps the buffers alive for the call. Limited API (abi3), Python 3.9+. */
#define Py_LIMITED_API 0x03090000
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* events(event_type, n, data, ends, ids, shards, sequences, timestamps) -> list
 * `event_type` is a tuple subclass of five fields (payload, id, shard, sequence, timestamp_ns);
 * the others are the element count and the buffers' addresses. */
static PyObject *events(PyObject *self, PyObject *args) {
    PyObject *type;
    Py_ssize_t n;
    unsigned long long data_a, ends_a, ids_a, shards_a, seqs_a, ts_a;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnKKKKKK", &type, &n, &data_a, &ends_a, &ids_a, &shards_a,
                          &seqs_a, &ts_a))
        return NULL;
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "event_type must be a tuple subclass");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)type, Py_tp_alloc);
    if (alloc == NULL) return NULL;
    const char *data = (const char *)(uintptr_t)data_a;
    const uint32_t *ends = (const uint32_t *)(uintptr_t)ends_a;
    const char *ids = (const char *)(uintptr_t)ids_a;
    const uint16_t *shards = (const uint16_t *)(uintptr_t)shards_a;
    const uint64_t *seqs = (const uint64_t *)(uintptr_t)seqs_a;
    const uint64_t *ts = (const uint64_t *)(uintptr_t)ts_a;

    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    uint32_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t id_len = strlen(ids);
        PyObject *fields[5] = {
            PyBytes_FromStringAndSize(data + start, (Py_ssize_t)(ends[i] - start)),
            PyUnicode_FromStringAndSize(ids, (Py_ssize_t)id_len),
            PyLong_FromLong(shards[i]),
            PyLong_FromUnsignedLongLong(seqs[i]),
            PyLong_FromUnsignedLongLong(ts[i]),
        };
        start = ends[i];
        ids += id_len + 1;
        PyObject *event = NULL;
        if (fields[0] && fields[1] && fields[2] && fields[3] && fields[4])
            event = alloc((PyTypeObject *)type, 5);
        if (event == NULL) {
            for (int f = 0; f < 5; f++) Py_XDECREF(fields[f]);
            Py_DECREF(list);
            return NULL;
        }
        for (int f = 0; f < 5; f++) PyTuple_SetItem(event, f, fields[f]); /* steals */
        PyList_SetItem(list, i, event);                                   /* steals */
    }
    return list;
}

static PyMethodDef methods[] = {
    {"events", events, METH_VARARGS, "Builds a page's Event tuples from its flat arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_events", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__events(void) { return PyModule_Create(&module); }
