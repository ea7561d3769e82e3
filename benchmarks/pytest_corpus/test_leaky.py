"""Tests that leak on every call: each must fail under --memtui-no-leak."""

from corpus_lib import Registry, handler_leak, log_request, next_id, record_event, remember, square


def test_appends_to_module_list():
    record_event("click")


def test_dict_grows_with_new_keys():
    remember(next_id())


def test_instance_attribute_grows():
    log_request("/index")


def test_class_attribute_listeners():
    Registry.subscribe(lambda event: None)


def test_logging_handlers_pile_up():
    handler_leak()


def test_unbounded_lru_cache_new_args():
    assert square(next_id()) > 0
