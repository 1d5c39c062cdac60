import { render } from 'preact';

import { App } from './components/App';
import { store } from './state';
import { registerServiceWorker } from './state/security';
import './styles.css';

const root = document.getElementById('app')!;
const draw = () => render(<App />, root);
store.core.subscribe(draw);
draw();
void store.session.boot();
// The service worker shows push notifications; registering it asks the user nothing.
void registerServiceWorker();
