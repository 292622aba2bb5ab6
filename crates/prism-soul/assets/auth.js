// Sign-in and sign-up forms: post to the JSON API, show errors next to the named field.
import { api, showError, clearErrors } from './api.js';

const form = document.getElementById('auth-form');
const general = document.getElementById('form-error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const kind = form.dataset.kind;
  const data = Object.fromEntries(new FormData(form));
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    await api('POST', kind === 'signup' ? '/api/auth/signup' : '/api/auth/login', data);
    location.assign(form.dataset.next || '/app');
  } catch (err) {
    showError(form, err, general);
  } finally {
    button.disabled = false;
  }
});
form.querySelector('input').focus();
