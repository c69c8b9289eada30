"""A Streamlit dashboard for the iris model API: its metadata, and a form that asks it for a prediction.

Run it with `streamlit run dashboard.py`; API_URL says where the API is (in Compose, the
service name `api` resolves to the API container).
"""

import os

import pandas as pd
import requests
import streamlit as st

API_URL = os.environ.get("API_URL", "http://api:5000").rstrip("/")
TIMEOUT = (2, 5)  # seconds to connect, seconds to answer: a dashboard must not hang

# The four iris measurements in cm: (min, max, default) around the ranges in the data set.
FEATURES = {
    "sepal_length": (4.0, 8.0, 5.8),
    "sepal_width": (2.0, 4.5, 3.0),
    "petal_length": (1.0, 7.0, 4.3),
    "petal_width": (0.1, 2.5, 1.3),
}


class ApiError(Exception):
    """The API could not be reached, or it answered with an error."""


def call(method, path, **kwargs):
    """Send one request to the API and return its JSON; raise ApiError with a short message."""
    url = API_URL + path
    try:
        response = requests.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise ApiError(f"Cannot reach the API at {url} ({type(exc).__name__}).") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not response.ok:  # the API answers errors as {"error": ..., "message": ...}
        detail = body.get("message") if isinstance(body, dict) else None
        raise ApiError(f"The API answered {response.status_code}: {detail or response.reason}.")
    if body is None:
        raise ApiError(f"{url} did not answer JSON: is API_URL pointing at the model API?")
    return body


def show_error(exc):
    st.error(f"{exc}\n\nCheck that API_URL (now `{API_URL}`) points at the model API "
             "and that the api container is running (`docker ps`).")


@st.cache_data(ttl=30, show_spinner=False)  # errors are raised, so they are never cached
def metadata():
    return call("GET", "/metadata")


st.set_page_config(page_title="Iris classifier", page_icon="🌸")
st.title("Iris classifier")

st.subheader("The model")
try:
    meta = metadata()
    st.markdown(f"**Version:** {meta.get('model_version')}  \n"
                f"**Classes:** {', '.join(map(str, meta.get('classes', [])))}  \n"
                f"**Features:** {', '.join(map(str, meta.get('features', [])))}")
    st.write("**Metrics:**")
    st.json(meta.get("metrics", {}))
except ApiError as exc:
    show_error(exc)

st.subheader("Ask for a prediction")
with st.form("measurements"):
    record = {name: st.slider(f"{name.replace('_', ' ')} (cm)", low, high, default, step=0.1)
              for name, (low, high, default) in FEATURES.items()}
    submitted = st.form_submit_button("Predict")

if submitted:
    try:
        answer = call("POST", "/predict", json=record)  # one record: {feature: value}
        prediction = answer["predictions"][0]
    except ApiError as exc:
        show_error(exc)
    except (KeyError, IndexError, TypeError):
        st.error("The API's answer has no predictions in it: is it the iris model API?")
    else:
        st.success(f"Prediction: **{prediction.get('label')}**")
        probabilities = prediction.get("probabilities") or {}
        if probabilities:
            st.bar_chart(pd.Series(probabilities, name="probability"))
        st.caption(f"Served by replica `{answer.get('served_by')}`, "
                   f"model version {answer.get('model_version')}.")
