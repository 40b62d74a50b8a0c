# cython: language_level=3, boundscheck=False, wraparound=False
"""The GPX point loop in C: every wpt, rtept and trkpt of a file and its common children.

A 100,000-point GPX has about 700,000 elements. Walking them from Python costs a proxy
object, a '{namespace}name' string and a text string per element (1.2 s of the 1.7 s it
took to read such a file); here libxml2's tree is walked through lxml's public C API
(https://lxml.de/capi.html), so only the values a Draft keeps become Python objects. The
uncommon children (extensions, link, other elements) are handed back to Python one by one,
so their rules live in one place, `data.field.gpx`.
"""

from libc.string cimport strcmp

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree
from lxml.includes.tree cimport const_xmlChar

cetree.import_lxml__etree()

cdef int _BIG_LINE = 65535  # libxml2 keeps larger line numbers elsewhere; lxml knows where


cdef inline object _stripped(object text):
    """Text stripped, None when empty or absent (the reader's `_text`)."""
    if text is None:
        return None
    text = text.strip()
    return text if text else None


cdef object _point(
    cetree._Document doc,
    tree.xmlNode* c_element,
    long row,
    object label,
    object device,
    object draft_class,
    object other,
):
    cdef tree.xmlNode* c_child
    cdef const char* name
    cdef long line = c_element.line
    if line >= _BIG_LINE:
        line = cetree.elementFactory(doc, c_element).sourceline or 0
    draft = draft_class(
        row,
        cetree.attributeValueFromNsName(c_element, NULL, <const_xmlChar*>b"lon"),
        cetree.attributeValueFromNsName(c_element, NULL, <const_xmlChar*>b"lat"),
        label,
        line if line > 0 else None,
    )
    if device is not None:
        draft.device = device
    sym = None
    c_child = c_element.children
    while c_child is not NULL:
        if c_child.type == tree.XML_ELEMENT_NODE:
            name = <const char*>c_child.name
            if strcmp(name, b"time") == 0:
                draft.time = cetree.textOf(c_child)
            elif strcmp(name, b"ele") == 0:
                draft.elevation = cetree.textOf(c_child)
            elif strcmp(name, b"name") == 0:
                draft.name = _stripped(cetree.textOf(c_child))
            elif strcmp(name, b"type") == 0:
                draft.kind = _stripped(cetree.textOf(c_child))
            elif strcmp(name, b"hdop") == 0:
                draft.hdop = cetree.textOf(c_child)
            elif strcmp(name, b"sat") == 0:
                draft.satellites = cetree.textOf(c_child)
            elif strcmp(name, b"desc") == 0:
                draft.description = _stripped(cetree.textOf(c_child))
            elif strcmp(name, b"sym") == 0:
                sym = _stripped(cetree.textOf(c_child))
                draft.properties["sym"] = sym
            elif strcmp(name, b"pdop") == 0:
                draft.pdop = cetree.textOf(c_child)
            elif strcmp(name, b"vdop") == 0:
                draft.vdop = cetree.textOf(c_child)
            elif strcmp(name, b"src") == 0:
                draft.device = _stripped(cetree.textOf(c_child)) or draft.device
            else:
                other(draft, cetree.elementFactory(doc, c_child), name.decode("utf-8"))
        c_child = c_child.next
    if draft.kind is None:
        draft.kind = sym
    return draft


def points(
    cetree._Element parent,
    str local_name,
    long row,
    str label,
    object device,
    object draft_class,
    object other,
):
    """A Draft for every child element of `parent` whose local name is `local_name`."""
    cdef bytes wanted = local_name.encode("utf-8")
    cdef const char* c_wanted = wanted
    cdef tree.xmlNode* c_node = parent._c_node.children
    cdef list out = []
    while c_node is not NULL:
        if c_node.type == tree.XML_ELEMENT_NODE and strcmp(<const char*>c_node.name, c_wanted) == 0:
            out.append(_point(parent._doc, c_node, row, label, device, draft_class, other))
        c_node = c_node.next
    return out


cdef class Features:
    """The root's wpt, rte and trk children in file order, numbered together from 1, read
    a batch at a time so that the first chunk of a big file is ready early.

    A wpt becomes a Draft (label 'wpt'); a rte or trk is returned as (row, element) for the
    Python side to read. Other children (metadata, extensions) are skipped. The tree must
    not change while it is read.
    """

    cdef cetree._Element _root
    cdef tree.xmlNode* _next
    cdef long _row
    cdef object _device, _draft_class, _other

    def __cinit__(self, cetree._Element root, object device, object draft_class, object other):
        self._root = root
        self._next = root._c_node.children
        self._row = 0
        self._device = device
        self._draft_class = draft_class
        self._other = other

    def batch(self, long size):
        """Up to `size` more features; an empty list at the end."""
        cdef tree.xmlNode* c_node = self._next
        cdef const char* name
        cdef list out = []
        while c_node is not NULL and len(out) < size:
            if c_node.type == tree.XML_ELEMENT_NODE:
                name = <const char*>c_node.name
                if strcmp(name, b"wpt") == 0:
                    self._row += 1
                    out.append(
                        _point(
                            self._root._doc,
                            c_node,
                            self._row,
                            "wpt",
                            self._device,
                            self._draft_class,
                            self._other,
                        )
                    )
                elif strcmp(name, b"rte") == 0 or strcmp(name, b"trk") == 0:
                    self._row += 1
                    out.append((self._row, cetree.elementFactory(self._root._doc, c_node)))
            c_node = c_node.next
        self._next = c_node
        return out
