

# --- The tutorial's entry points (docker/tutorial/app_entry.py, appended by lesson 10) ---
# `gunicorn app:app` needs a module-level `app`; `python app.py` needs a __main__ block.
app = create_app()

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT") or 5000))
